"""Input resolution per batch, as pure functions of ``(seed, epoch, batch number)``.

Two schedules, each a frozen value the loader takes (``DataLoaderConfig(scales=...)``):

- ``Progressive``: FFCV's progressive resizing. Every batch of an epoch has one resolution,
  growing linearly from ``min_res`` (up to ``start_epoch``) to ``max_res`` (from
  ``end_epoch``), rounded to a multiple of ``multiple`` (FFCV's ImageNet configs: 160 -> 192).
- ``RandomScales``: YOLO's multi-scale training. Batch ``k`` of an epoch has a side drawn
  from ``(seed, epoch, k)`` among the multiples of ``multiple`` in ``[low, high] x size``,
  the same on every worker and rank for a given step; with ``keep_pixels`` the batch size
  shrinks as the side grows (``batch_size x (size / side)^2``) so every batch holds about
  as many pixels.

``plan`` cuts an epoch's share into such batches from its first sample, so batch ``k`` has
the same scale and samples whatever position a run resumes from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from loadwise.errors import ConfigError
from loadwise.sampling.keys import mix, seed_state

_UNIT = 2.0**-53


def uniform(seed: int, epoch: int, ids: np.ndarray, streams: np.ndarray | int) -> np.ndarray:
    """Floats in [0, 1), one per ``(id, stream)``: ``[len(ids), len(streams)]`` (or
    ``[len(ids)]`` for one int stream), a fixed hash of ``(seed, epoch, id, stream)``."""
    state = mix(np.atleast_1d(seed_state(seed) ^ np.uint64(epoch)))
    rows = mix(state ^ np.asarray(ids, dtype=np.int64).reshape(-1).astype(np.uint64))
    cols = mix(np.atleast_1d(np.asarray(streams, dtype=np.int64)).astype(np.uint64) + np.uint64(1))
    keys = mix(rows[:, None] ^ cols.reshape(1, -1))
    out = (keys >> np.uint64(11)).astype(np.float64) * _UNIT
    return out[:, 0] if np.ndim(streams) == 0 else out


def progressive_resolution(
    epoch: int, start_epoch: int, end_epoch: int, min_res: int, max_res: int, multiple: int = 32
) -> int:
    """FFCV's ``get_resolution``: ``min_res`` -> ``max_res`` linearly over the epochs
    ``start_epoch`` -> ``end_epoch``, rounded to the nearest multiple of ``multiple``."""
    side = np.interp([epoch], [start_epoch, end_epoch], [min_res, max_res])[0]
    return max(int(np.round(side / multiple)) * multiple, multiple)


@dataclass(frozen=True)
class Progressive:
    """One resolution per epoch: ``progressive_resolution`` of these arguments."""

    min_res: int = 160
    max_res: int = 192
    start_epoch: int = 0
    end_epoch: int = 10
    multiple: int = 32

    def __post_init__(self) -> None:
        _positive("min_res", self.min_res)
        _positive("multiple", self.multiple)
        if self.max_res < self.min_res:
            raise ConfigError(f"`max_res` ({self.max_res}) is below `min_res` ({self.min_res}).")
        if not 0 <= self.start_epoch <= self.end_epoch:
            raise ConfigError(
                f"the ramp needs 0 <= start_epoch <= end_epoch: {self.start_epoch}, "
                f"{self.end_epoch}."
            )

    def side(self, epoch: int) -> int:
        """The resolution of every batch of ``epoch``."""
        return progressive_resolution(
            epoch, self.start_epoch, self.end_epoch, self.min_res, self.max_res, self.multiple
        )

    def scales(self, seed: int, epoch: int, count: int) -> np.ndarray:
        """The side of each of the epoch's first ``count`` batches."""
        return np.full(count, self.side(epoch), dtype=np.int64)

    def batch_sizes(self, batch_size: int, epoch: int, scales: np.ndarray) -> np.ndarray:
        return np.full(len(scales), batch_size, dtype=np.int64)

    def smallest_batch(self, batch_size: int, epoch: int) -> int:
        return batch_size


@dataclass(frozen=True)
class RandomScales:
    """Each batch at a side drawn from ``(seed, epoch, batch)``: a multiple of ``multiple``
    in ``[low, high] x size`` (``size`` an int, or a ``Progressive`` for a moving centre)."""

    size: int | Progressive = 640
    low: float = 0.5
    high: float = 1.5
    multiple: int = 32
    keep_pixels: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.size, Progressive):
            _positive("size", self.size)
        _positive("multiple", self.multiple)
        if not 0 < self.low <= self.high:
            raise ConfigError(f"need 0 < low <= high. Found: low={self.low}, high={self.high}.")

    def centre(self, epoch: int) -> int:
        return self.size.side(epoch) if isinstance(self.size, Progressive) else int(self.size)

    def choices(self, epoch: int) -> np.ndarray:
        """The sides a batch of ``epoch`` can have (at least one: the nearest multiple)."""
        centre, m = self.centre(epoch), self.multiple
        first = max(math.ceil(centre * self.low / m), 1) * m
        last = max(math.floor(centre * self.high / m) * m, first)
        return np.arange(first, last + 1, m, dtype=np.int64)

    def scales(self, seed: int, epoch: int, count: int) -> np.ndarray:
        choices = self.choices(epoch)
        picks = uniform(seed, epoch, np.arange(count), 0) * len(choices)
        return choices[np.minimum(picks.astype(np.int64), len(choices) - 1)]

    def batch_sizes(self, batch_size: int, epoch: int, scales: np.ndarray) -> np.ndarray:
        """``batch_size`` each, or with ``keep_pixels`` about the same pixels as
        ``batch_size`` images at the centre size (at least one image)."""
        if not self.keep_pixels:
            return np.full(len(scales), batch_size, dtype=np.int64)
        ratio = (self.centre(epoch) / np.asarray(scales, dtype=np.float64)) ** 2
        return np.maximum(np.floor(batch_size * ratio + 1e-9), 1).astype(np.int64)

    def smallest_batch(self, batch_size: int, epoch: int) -> int:
        """The size of a batch at the largest side (the smallest batch of the epoch)."""
        return int(self.batch_sizes(batch_size, epoch, self.choices(epoch)[-1:])[0])


ScaleSchedule = Progressive | RandomScales


def plan(
    schedule: ScaleSchedule, seed: int, epoch: int, share: int, batch_size: int, drop_last: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The epoch's batches over a share of ``share`` samples: ``ends`` (the position after
    each batch) and ``scales``, cut from the share's first sample; the last batch is cut
    short at the share's end, or dropped with ``drop_last``."""
    count = share // schedule.smallest_batch(batch_size, epoch) + 1
    scales = schedule.scales(seed, epoch, count)
    sizes = schedule.batch_sizes(batch_size, epoch, scales)
    ends = np.cumsum(sizes)
    n = int(np.searchsorted(ends, share)) + 1 if share else 0
    ends, scales = np.minimum(ends[:n], share), scales[:n]
    if drop_last and n and ends[-1] - (ends[-2] if n > 1 else 0) < sizes[n - 1]:
        ends, scales = ends[:-1], scales[:-1]
    return ends, scales


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"`{name}` must be an integer >= 1. Found: {value!r}.")
