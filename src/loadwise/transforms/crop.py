"""``RandomResizedCrop``: seeded crop + resize + horizontal flip of a whole batch.

Each sample's crop box and flip are a pure function of ``(seed, epoch, sample index)``
(counter-based keys, ``sampling/scales.py``), drawn for the whole batch at once with
torchvision's rule (area in ``scale``, log aspect ratio in ``ratio``, ten tries, then a
centre crop); so augmentation is the same for any worker count, batch size or resume point.
Crops are cut as views of the batch and resized with torch (``resize_images``), never PIL.
The box depends only on the image's own size, not on the output size: every scale of one
sample shows the same view (what multi-scale training wants).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from loadwise.errors import ConfigError
from loadwise.sampling.scales import uniform
from loadwise.transforms.base import batch_field
from loadwise.transforms.resize import Size, batch_scale, image_size, resize_images

_TRIES = 10
#: Key streams: area and ratio take one per try, then the two offsets and the flip.
_AREA, _RATIO, _TOP, _LEFT, _FLIP = 0, _TRIES, 2 * _TRIES, 2 * _TRIES + 1, 2 * _TRIES + 2


@dataclass(frozen=True)
class CropSpec:
    """torchvision's ``RandomResizedCrop`` ranges, plus the flip probability and the seed."""

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        low, high = self.scale
        if not 0 < low <= high <= 1:
            raise ConfigError(f"`scale` is (low, high) with 0 < low <= high <= 1: {self.scale}.")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ConfigError(f"`ratio` is (low, high) with 0 < low <= high: {self.ratio}.")
        if not 0 <= self.flip <= 1:
            raise ConfigError(f"`flip` is a probability in [0, 1]. Found: {self.flip!r}.")

    def boxes(
        self, epoch: int, indices: np.ndarray, height: int, width: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``[B, 4]`` boxes ``(top, left, h, w)`` and ``[B]`` flips for these samples."""
        ids = np.asarray(indices, dtype=np.int64).reshape(-1)
        tries = np.arange(_TRIES)
        area = height * width * _between(uniform(self.seed, epoch, ids, _AREA + tries), self.scale)
        log_ratio = np.log(self.ratio)
        aspect = np.exp(_between(uniform(self.seed, epoch, ids, _RATIO + tries), log_ratio))
        w = np.rint(np.sqrt(area * aspect)).astype(np.int64)
        h = np.rint(np.sqrt(area / aspect)).astype(np.int64)
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = np.argmax(fits, axis=1)
        rows = np.arange(len(ids))
        found = fits[rows, first]
        ch, cw = self._centre(height, width)
        h = np.where(found, h[rows, first], ch)
        w = np.where(found, w[rows, first], cw)
        top_u, left_u = uniform(self.seed, epoch, ids, np.array([_TOP, _LEFT])).T
        top = np.where(found, (top_u * (height - h + 1)).astype(np.int64), (height - h) // 2)
        left = np.where(found, (left_u * (width - w + 1)).astype(np.int64), (width - w) // 2)
        flips = uniform(self.seed, epoch, ids, np.array([_FLIP]))[:, 0] < self.flip
        return np.stack([top, left, h, w], axis=1), flips

    def _centre(self, height: int, width: int) -> tuple[int, int]:
        """torchvision's fallback: the whole image, cut to the nearest allowed aspect ratio."""
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            return round(width / self.ratio[0]), width
        if in_ratio > self.ratio[1]:
            return height, round(height * self.ratio[1])
        return height, width


def crop_resize(
    images: torch.Tensor, boxes: np.ndarray, flips: np.ndarray, size: Size
) -> torch.Tensor:
    """Each image's box resized to ``size`` (antialiased where it shrinks), flipped where
    asked; dtype, device and memory format kept."""
    height, width = image_size(size)
    batch, channels = images.shape[0], images.shape[1]
    fmt = (
        torch.channels_last
        if images.is_contiguous(memory_format=torch.channels_last) and channels > 1
        else torch.contiguous_format
    )
    out = torch.empty(
        (batch, channels, height, width), dtype=images.dtype, device=images.device
    ).contiguous(memory_format=fmt)
    for row, (top, left, h, w) in enumerate(boxes.tolist()):
        out[row] = resize_images(images[row, :, top : top + h, left : left + w], (height, width))
    flipped = torch.from_numpy(np.flatnonzero(flips)).to(images.device)
    if len(flipped):
        out[flipped] = out[flipped].flip(-1)
    return out


class RandomResizedCrop:
    """Seeded random-resized-crop + horizontal flip of each field of ``fields``.

    Needs the batch's ``index`` (global sample indices) and ``epoch``: as the loader's
    ``batch_transform`` it gets both (the loader tags batches with their epoch for
    transforms that declare ``uses_epoch``). ``size=None`` takes the batch's ``scale``.
    """

    uses_epoch = True

    def __init__(
        self,
        size: Size | None = None,
        *,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: float = 0.5,
        seed: int = 0,
        fields: Sequence[str] = ("image",),
    ) -> None:
        self.size = None if size is None else image_size(size)
        self.spec = CropSpec(tuple(scale), tuple(ratio), flip, seed)  # type: ignore[arg-type]
        self.fields = tuple(fields)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        size = self.size if self.size is not None else batch_scale(batch, "RandomResizedCrop")
        epoch, indices = _epoch_and_indices(batch)
        out = dict(batch)
        for name in self.fields:
            images = batch_field(batch, name, "RandomResizedCrop")
            boxes, flips = self.spec.boxes(epoch, indices, images.shape[-2], images.shape[-1])
            out[name] = crop_resize(images, boxes, flips, size)
        return out

    def __repr__(self) -> str:
        return f"RandomResizedCrop(size={self.size}, {self.spec}, fields={self.fields})"


def _epoch_and_indices(batch: Any) -> tuple[int, np.ndarray]:
    if not isinstance(batch, dict) or "index" not in batch or "epoch" not in batch:
        have = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ConfigError(
            f"RandomResizedCrop draws each crop from (seed, epoch, sample index), so the batch "
            f"needs `index` and `epoch` (it has {have}): use it as the `batch_transform` of "
            f"`loadwise.loader` over a loadwise dataset, or add both fields yourself."
        )
    index = batch["index"]
    ids = index.cpu().numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
    return int(batch["epoch"]), ids


def _between(u: np.ndarray, bounds: Sequence[float] | np.ndarray) -> np.ndarray:
    low, high = float(bounds[0]), float(bounds[1])
    return low + u * (high - low) if high > low else np.full_like(u, low)
