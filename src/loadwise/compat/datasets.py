"""``BaseDataset`` and the image datasets the source documents promise, over a packed dataset.

A folder is packed once (``compat.cache``) and opened in a loading mode; an item, or a whole
batch through ``get_batch``, is then one gather from the packed dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset, default_collate

from loadwise import stages
from loadwise.access.auto import LoadingMode, choose_mode, open_dataset
from loadwise.access.base import Batch, PackedBase
from loadwise.access.budget import check_fraction
from loadwise.access.cached import DEFAULT_CACHE_BYTES
from loadwise.compat.cache import packed_folder
from loadwise.errors import ConfigError
from loadwise.format.fields import FieldSpec, FixedField, ImageField
from loadwise.format.reader import read_manifest
from loadwise.sources.media import image_size_hw
from loadwise.transforms import IMAGENET_MEAN, IMAGENET_STD, Normalize

log = logging.getLogger("loadwise")

Transform = Callable[[Any], Any]
Indices = Sequence[int] | np.ndarray


class BaseDataset(Dataset):
    """A map-style dataset over the packed dataset at ``data_path``; subclasses shape the items.

    Items are sample dicts (``transform`` applied to each) unless ``_item`` says otherwise.
    """

    def __init__(
        self,
        data_path: str | Path,
        loading_mode: str | LoadingMode = "auto",
        transform: Transform | None = None,
        *,
        fields: Sequence[str] | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.packed: PackedBase = open_dataset(
            data_path, loading_mode, fields=fields, cache_bytes=cache_bytes
        )
        self.loading_mode = LoadingMode(self.packed.mode)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.packed)

    def __getitem__(self, index: int) -> Any:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Indices) -> list[Any]:
        """The items of a batch, gathered from the packed dataset in one call."""
        batch = self._gathered(indices)
        return [self._item(batch, j) for j in range(len(batch["index"]))]

    def get_batch(self, indices: Indices) -> Any:
        """A collated batch: one gather; with a ``transform``, items collated after it."""
        if self.transform is None:
            return self._collated(self._gathered(indices))
        return default_collate(self.__getitems__(indices))

    def close(self) -> None:
        self.packed.close()

    def __enter__(self) -> BaseDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _gathered(self, indices: Indices) -> Batch:
        """The packed batch, one gather; subclasses change it here, once per batch."""
        return self.packed.get_batch(indices)

    def _item(self, batch: Batch, j: int) -> Any:
        row = {name: value[j] for name, value in batch.items()}
        return row if self.transform is None else self.transform(row)

    def _collated(self, batch: Batch) -> Any:
        return batch


class ImageDataset(BaseDataset):
    """``(image, label)`` items from a class-per-folder image tree (packed once) or packed data.

    ``image`` is, before ``transform``, the documents' default: a float32 (C, H, W) tensor of
    ``image_size`` in ``image_mode``, normalised with the ImageNet mean and std (for ``L``
    images, the mean of the three channels' values) - computed per batch, on the gathered
    batch, not per sample. ``normalize=False`` gives the stored uint8 pixels instead.
    ``classes`` names the labels. ``cache_size`` is the ``cached`` mode's byte budget per
    process. Batches from ``get_batch`` are ``(images, labels)``.
    """

    def __init__(
        self,
        data_path: str | Path,
        image_size: int | tuple[int, int] | None = (224, 224),
        transform: Transform | None = None,
        loading_mode: str | LoadingMode = "auto",
        cache_size: int = DEFAULT_CACHE_BYTES,
        *,
        image_mode: str | None = "RGB",
        normalize: bool = True,
    ) -> None:
        self.image_size = image_size_hw(image_size)
        path = packed_folder(data_path, image_size=self.image_size, image_mode=image_mode)
        _check_images(path, self.image_size, image_mode)
        fields = ("image", "label")
        super().__init__(path, loading_mode, transform, fields=fields, cache_bytes=cache_size)
        self.classes = list(self.packed.categories("label"))
        self.normalization = _imagenet(self.packed.manifest.field("image")) if normalize else None

    def _gathered(self, indices: Indices) -> Batch:
        batch = super()._gathered(indices)
        if self.normalization is None:
            return batch
        with stages.span("transform"):
            images = batch["image"]
            if isinstance(images, list):  # encoded images of different sizes
                return {**batch, "image": [self.normalization.images(im) for im in images]}
            return self.normalization(batch)

    def _item(self, batch: Batch, j: int) -> tuple[Any, int]:
        image = batch["image"][j]
        return (image if self.transform is None else self.transform(image)), int(batch["label"][j])

    def _collated(self, batch: Batch) -> tuple[Any, Any]:
        return batch["image"], batch["label"]


class MemoryEfficientDataset(BaseDataset):
    """Sample dicts from packed data (or a folder, packed once), in RAM only if it fits.

    ``auto`` picks ``eager`` when the stored bytes are at most ``max_memory_usage`` x the
    available memory, else ``lazy``; ``mode`` and ``reason`` say what was chosen and why.
    ``image_size`` and ``image_mode`` make a folder's images alike when they differ.
    """

    def __init__(
        self,
        data_path: str | Path,
        max_memory_usage: float = 0.5,
        loading_mode: str | LoadingMode = "auto",
        *,
        image_size: int | tuple[int, int] | None = None,
        image_mode: str | None = None,
    ) -> None:
        check_fraction("max_memory_usage", max_memory_usage)
        path = packed_folder(data_path, image_size=image_size, image_mode=image_mode)
        mode, self.reason = _choose_mode(path, max_memory_usage, loading_mode)
        super().__init__(path, mode)
        self.mode: str = self.packed.mode
        log.info("loadwise: MemoryEfficientDataset uses %s mode: %s", self.mode, self.reason)


def _imagenet(spec: FieldSpec) -> Normalize:
    """ImageNet's normalisation for RGB images; for one channel, the mean of the three."""
    if isinstance(spec, FixedField) and len(spec.shape) == 3:
        channels = spec.shape[0]
    else:  # encoded images decode to their mode
        channels = 1 if isinstance(spec, ImageField) and spec.mode == "L" else 3
    if channels == 1:
        return Normalize((sum(IMAGENET_MEAN) / 3,), (sum(IMAGENET_STD) / 3,))
    return Normalize(IMAGENET_MEAN, IMAGENET_STD)


def _choose_mode(
    path: Path, fraction: float, loading_mode: str | LoadingMode
) -> tuple[str | LoadingMode, str]:
    """``loading_mode`` as asked, or for ``auto`` eager/lazy by the memory budget, and why."""
    if str(getattr(loading_mode, "value", loading_mode)).lower() != "auto":
        return loading_mode, f"loading_mode={loading_mode!r} was asked for"
    return choose_mode(path, max_memory_usage=fraction)


def _check_images(path: Path, size: tuple[int, int] | None, mode: str | None) -> None:
    """A packed dataset given as it is must hold images of the size and mode asked for."""
    manifest = read_manifest(path)
    spec, _ = manifest.field("image"), manifest.field("label")
    if not isinstance(spec, FixedField) or len(spec.shape) != 3:
        return  # encoded images: decoded to their own size when read
    channels = {"L": 1, "RGB": 3}.get(mode or "", spec.shape[0])
    wanted = (channels, *(size or spec.shape[1:]))
    if spec.shape != wanted:
        raise ConfigError(
            f"packed dataset `{path}` holds images of shape {spec.shape} (C, H, W), not {wanted}: "
            f"pass image_size={tuple(spec.shape[1:])} and image_mode="
            f"{'L' if spec.shape[0] == 1 else 'RGB'!r}, or give the image folder instead."
        )
