"""``MultiScaleDataset``: the documents' multi-scale dataset, resizing whole batches on demand.

Memory-efficient items hold one ``base_image`` per sample (as the base dataset stores it),
the ``scales`` and the label; a scale's images are made when asked (``get_scale_image``,
``scale_batches``), a batch at a time with torch (``transforms.resize``), on the device the
images are on. ``memory_efficient=False`` is the documents' legacy mode, kept to compare
against: every item carries ``image_<s>`` for every scale. Both give the same pixels.

Images come out as float32, normalised with the ImageNet mean and std (the documents'
transform) when the base stores uint8, and as float resized when the base gives float
(e.g. ``ImageDataset``, already normalised); channels-last, the layout they are resized and
normalised fastest in (the values are the same either way). ``augment`` adds a seeded
random-resized-crop and flip (``transforms.crop``) keyed by ``(seed, epoch, index)``: the
same view at every scale of a sample, the same in both modes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from loadwise.compat.scale_groups import ScaleGroup, check_scales
from loadwise.errors import ConfigError, SampleIndexError
from loadwise.transforms.channels_last import normalize_channels_last
from loadwise.transforms.crop import CropSpec, crop_resize
from loadwise.transforms.normalize import IMAGENET_MEAN, IMAGENET_STD, Normalize
from loadwise.transforms.resize import resize_images

log = logging.getLogger("loadwise")

#: The crop ``augment=True`` uses: milder than torchvision's (0.08, 1) area range.
AUGMENT = CropSpec(scale=(0.25, 1.0))


class ScaleBatch(NamedTuple):
    """One scale of (part of) a batch, on the device: ``weight`` is its share of the batch,
    so ``(loss_mean * weight).backward()`` over all parts adds up the whole batch's mean."""

    scale: int
    images: torch.Tensor
    labels: torch.Tensor
    weight: float


class MultiScaleDataset(Dataset):
    """``base_dataset`` (items ``(image, label)`` or dicts with ``image`` and ``label``) at
    several ``scales`` (square side lengths, increasing).

    ``upscale=False`` refuses scales larger than the base images. ``augment`` is False,
    True (``AUGMENT``) or a ``CropSpec``; its epoch is the loader's (batches fetched by
    ``loadwise.loader``) or ``set_epoch``'s.
    """

    def __init__(
        self,
        base_dataset: Any,
        scales: Sequence[int],
        augment: bool | CropSpec = False,
        memory_efficient: bool = True,
        *,
        upscale: bool = True,
        seed: int = 0,
    ) -> None:
        self.base_dataset, self.scales = base_dataset, check_scales(scales)
        self.memory_efficient, self.epoch = memory_efficient, 0
        self.crop = _crop_spec(augment, seed)
        self.augment = self.crop is not None
        if not len(base_dataset):
            raise ConfigError("`base_dataset` is empty: there is no image to scale.")
        image, _ = _image_and_label(base_dataset[0], 0)
        self.channels, self.base_size = image.shape[0], tuple(image.shape[-2:])
        if not upscale and self.scales[-1] > min(self.base_size):
            raise ConfigError(
                f"scale {self.scales[-1]} is larger than the base images "
                f"({self.base_size[0]}x{self.base_size[1]}) and `upscale=False`: drop it, "
                f"or pass upscale=True to interpolate up."
            )
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if self.channels == 3 else _grey()
        self.normalization = Normalize(mean, std)
        log.info("MultiScaleDataset: scales=%s, memory_efficient=%s", self.scales, memory_efficient)

    @property
    def uses_epoch(self) -> bool:
        """With augmentation, batches from ``loadwise.loader`` carry the epoch to key it."""
        return self.augment

    def set_epoch(self, epoch: int) -> None:
        """The epoch augmentation is keyed by, where the loader does not say."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.base_dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        batch = self.get_batch(indices)
        return [{k: v[j] for k, v in batch.items()} for j in range(len(batch["label"]))]

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """The items of ``indices`` collated: one fetch from the base (one gather where it
        has ``get_batch``); legacy mode resizes every scale here, a batch at a time."""
        epoch = getattr(indices, "epoch", None)
        idx = self._checked(indices)
        images, labels = self._base_batch(idx)
        out: dict[str, Any] = {"label": labels, "index": torch.from_numpy(idx)}
        if self.memory_efficient:
            out["base_image"] = images
            out["scales"] = torch.tensor(self.scales).expand(len(idx), -1)
            return out
        epoch = self.epoch if epoch is None else epoch
        images = images.contiguous(memory_format=torch.channels_last)  # resizes fastest so
        for scale in self.scales:
            out[f"image_{scale}"] = self.get_scale_image(images, scale, index=idx, epoch=epoch)
        return out

    def get_scale_image(
        self,
        base_image: torch.Tensor,
        scale: int,
        *,
        index: Any = None,
        epoch: int | None = None,
    ) -> torch.Tensor:
        """``base_image`` (``[C, H, W]`` or a batch ``[B, C, H, W]``) at ``scale``, on its
        device; with ``augment``, cropped and flipped by ``(seed, epoch, index)``."""
        if scale not in self.scales:
            raise ConfigError(f"scale {scale!r} is not one of this dataset's scales {self.scales}.")
        images = base_image[None] if base_image.dim() == 3 else base_image
        if self.crop is None:
            out = resize_images(images, scale)
        else:
            ids = _index_array(index, len(images))
            boxes, flips = self.crop.boxes(
                self.epoch if epoch is None else epoch, ids, images.shape[-2], images.shape[-1]
            )
            out = crop_resize(images, boxes, flips, scale)
        if out.dtype == torch.uint8:
            out = normalize_channels_last(out, self.normalization)
        return out[0] if base_image.dim() == 3 else out

    def scale_batches(
        self,
        batch: dict[str, Any],
        groups: Sequence[ScaleGroup] | None = None,
        *,
        device: str | torch.device | None = None,
        epoch: int | None = None,
    ) -> Iterator[ScaleBatch]:
        """A memory-efficient batch's scales, group by group (``group_scales_by_memory``;
        default one scale at a time), in micro-batches where a group says so, on ``device``.
        Each scale's images are made when asked for and dropped before the next are made.
        Augmentation's epoch: ``epoch``, else the batch's own (from ``loadwise.loader``),
        else ``set_epoch``'s."""
        base, labels, index = _efficient_fields(batch)
        epoch = epoch if epoch is not None else batch.get("epoch")
        base = base.contiguous(memory_format=torch.channels_last)  # resizes fastest so
        size = len(base)
        for group in groups or [ScaleGroup((s,), size) for s in self.scales]:
            step = max(min(group.micro_batch, size), 1)
            for first in range(0, size, step):
                part = base[first : first + step].to(device or base.device, non_blocking=True)
                rows = labels[first : first + step].to(part.device, non_blocking=True)
                ids = index[first : first + step]
                for scale in group:
                    images = self.get_scale_image(part, scale, index=ids, epoch=epoch)
                    yield ScaleBatch(scale, images, rows, len(part) / size)
                    del images
                del part

    def _checked(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise SampleIndexError(f"index {bad} is out of range for {n} samples.")
        return np.where(idx < 0, idx + n, idx)

    def _base_batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``[B, C, H, W]`` and labels ``[B]`` of the base, one fetch."""
        get_batch = getattr(self.base_dataset, "get_batch", None)
        if callable(get_batch) and len(idx):
            batch = get_batch(idx)
            item = (batch.get("image"), batch.get("label")) if isinstance(batch, dict) else batch
            images, labels = _image_and_label(item, int(idx[0]), batched=True)
            return images, labels
        pairs = [_image_and_label(self.base_dataset[int(i)], int(i)) for i in idx]
        if not pairs:
            return torch.empty((0, self.channels, *self.base_size)), torch.empty(
                0, dtype=torch.int64
            )
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def _image_and_label(
    item: Any, index: int, batched: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(image, label)`` from an item (a pair, or a dict with ``image`` and ``label``) as
    tensors: the image ``[C, H, W]`` (``[B, C, H, W]`` batched), uint8 or float."""
    if isinstance(item, dict):
        image, label = item.get("image"), item.get("label")
        found = f"a dict with keys {sorted(item)}"
    elif isinstance(item, tuple | list) and len(item) == 2:
        image, label = item
        found = f"a pair ({type(image).__name__}, {type(label).__name__})"
    else:
        image, label, found = None, None, f"a {type(item).__name__}"
    tensor = _as_image(image, 4 if batched else 3)
    if tensor is None or label is None:
        raise ConfigError(
            f"item {index} of the base dataset has no image and label: it is {found}. "
            f"MultiScaleDataset needs items (image, label) or {{'image': ..., 'label': ...}} "
            f"with the image a tensor [C, H, W], an array or a PIL image."
        )
    return tensor, torch.as_tensor(label, dtype=torch.int64)


def _as_image(value: Any, dims: int) -> torch.Tensor | None:
    if value is not None and hasattr(value, "getbands"):  # a PIL image
        value = np.asarray(value)
        value = value[..., None] if value.ndim == 2 else value
        value = value.transpose(2, 0, 1)
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor) or value.dim() not in (dims - 1, dims):
        return None
    if value.dim() == dims:
        return value
    return value.unsqueeze(-3)  # one channel: [H, W] -> [1, H, W], [B, H, W] -> [B, 1, H, W]


def _efficient_fields(batch: Any) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    if not isinstance(batch, dict) or "base_image" not in batch:
        have = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ConfigError(
            f"scale_batches takes a memory-efficient batch (`base_image`, `label`, `index`); "
            f"this one has {have}. Build the dataset with memory_efficient=True."
        )
    index = batch.get("index")
    ids = np.arange(len(batch["base_image"])) if index is None else _index_array(index, None)
    return batch["base_image"], torch.as_tensor(batch["label"]), ids


def _index_array(index: Any, size: int | None) -> np.ndarray:
    if index is None:
        raise ConfigError(
            "augmentation is keyed by each sample's index: pass `index=` (the batch's "
            "`index` field) so the same sample gets the same crop at every scale."
        )
    ids = index.cpu().numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
    ids = ids.astype(np.int64).reshape(-1)
    if size is not None and len(ids) != size:
        raise ConfigError(f"`index` has {len(ids)} entries for {size} images.")
    return ids


def _crop_spec(augment: bool | CropSpec, seed: int) -> CropSpec | None:
    if isinstance(augment, CropSpec):
        return augment
    if augment is True:
        return CropSpec(AUGMENT.scale, AUGMENT.ratio, AUGMENT.flip, seed)
    if augment is False:
        return None
    raise ConfigError(f"`augment` is True, False or a CropSpec. Found: {augment!r}.")


def _grey() -> tuple[tuple[float], tuple[float]]:
    return (sum(IMAGENET_MEAN) / 3,), (sum(IMAGENET_STD) / 3,)
