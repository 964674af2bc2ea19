"""Cached mode: lazy reads plus decoded images in one cache of ``cache_bytes`` shared by the
process that opens the dataset and all its DataLoader workers.

Worth it for encoded data (PNG/JPEG bytes): a sample is decoded once, by whichever process
meets it first, and then served from shared memory to every process. The cache fills once
and never evicts: under shuffled epochs a fixed set of cached samples hits as often as an
LRU would, and a fixed set can be shared without coordinating evictions between processes
(``shared_cache.py``). Once it is full, misses are decoded and not cached.

With nothing to decode (every field stored as arrays) a cached copy would only repeat the
page cache at a per-sample cost, so batches come straight from the memory map, as in lazy
mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from loadwise import stages
from loadwise.access.base import Batch
from loadwise.access.lazy import LazyDataset
from loadwise.access.shared_cache import CHANNELS, HEIGHT, OFFSET, READY, STATE, SharedCache
from loadwise.errors import ConfigError
from loadwise.format.fields import ImageField
from loadwise.format.fields.image import batch_buffer
from loadwise.gather import recycle
from loadwise.stores import ShardStore

DEFAULT_CACHE_BYTES = 1 << 30


class CachedDataset(LazyDataset):
    """Lazy access with decoded images kept in one shared cache of ``cache_bytes`` in total
    (``cache``: its ``hits`` and ``misses`` count samples over all processes)."""

    mode = "cached"

    def __init__(
        self,
        root: str | Path | ShardStore,
        *,
        fields: Sequence[str] | None = None,
        verify: str = "first_use",
        ragged: str = "padded",
        crop: int | tuple[int, int] | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        if cache_bytes < 0:
            raise ConfigError(f"`cache_bytes` must be >= 0. Found: {cache_bytes}.")
        super().__init__(root, fields=fields, verify=verify, ragged=ragged, crop=crop)
        #: The selected fields decoded on read; without any, nothing is worth caching.
        self.images = tuple(spec for spec in self.fields if isinstance(spec, ImageField))
        self.decodes = bool(self.images)
        limit = cache_bytes if self.decodes else 0
        self.cache = SharedCache(limit, len(self), len(self.images))

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> Batch:
        idx = self._checked(indices)
        if idx.size == 0 or not self.decodes:
            return super().get_batch(idx)
        found = self.cache.lookup(idx)  # (batch, image fields, entry)
        ready = (found[..., STATE] == READY).all(axis=1)
        missing = _first_each(idx[~ready])
        if missing.size == idx.size:  # every row decoded just now, in batch order
            whole = super().get_batch(missing)
            self._store(missing, whole)
            return whole
        fresh: Batch | None = None
        if missing.size:
            with recycle.private():  # copied into the batch below: not in a worker's slot
                fresh = super().get_batch(missing)
            self._store(missing, fresh)
        with stages.span("gather"):  # cache hits, timed like any gather (``loadwise.stages``)
            return self._assemble(idx, found, ready, missing, fresh)

    def close(self) -> None:
        super().close()
        self.cache.close()

    def _store(self, missing: np.ndarray, fresh: Batch) -> None:
        """Copy what fits of the freshly decoded images into the cache, then publish them."""
        shapes = np.stack([_shapes(fresh[spec.name]) for spec in self.images], axis=1)
        mask, offsets = self.cache.reserve(missing, shapes)
        if not mask.any():
            return
        for f, spec in enumerate(self.images):
            rows = np.flatnonzero(mask[:, f]).tolist()
            images = [_hwc(fresh[spec.name], r) for r in rows]
            self.cache.write(offsets[rows, f].tolist(), images)
        self.cache.publish(missing, mask)

    def _assemble(
        self,
        idx: np.ndarray,
        found: np.ndarray,
        ready: np.ndarray,
        missing: np.ndarray,
        fresh: Batch | None,
    ) -> Batch:
        """The batch from cached rows and fresh ones; other fields gathered once, as lazy."""
        storage = self.storage()
        if self._blocks is not None:
            self._blocks.require(idx)
        order = np.argsort(missing, kind="stable")
        where = order[np.searchsorted(missing, idx[~ready], sorter=order)] if missing.size else None
        batch: Batch = {}
        for spec in self.fields:
            if not isinstance(spec, ImageField):
                batch.update(spec.read_batch(storage, idx, self.read_options))
                continue
            f = self.images.index(spec)
            value = fresh[spec.name] if fresh is not None else None
            batch[spec.name] = self._images(found[:, f], ready, value, where)
        batch["index"] = torch.from_numpy(idx)
        return batch

    def _images(
        self, entries: np.ndarray, ready: np.ndarray, fresh: Any, where: np.ndarray | None
    ) -> Any:
        """One image field of a batch: ``(N, C, H, W)`` (channels-last in memory, as decoded)
        with one gather from the cache when sizes agree, else a list of ``(C, H, W)``."""
        shapes = entries[:, HEIGHT : CHANNELS + 1].copy()
        if where is not None:
            shapes[~ready] = _shapes(fresh)[where]
        if not (shapes == shapes[0]).all():
            return self._image_list(entries, ready, fresh, where)
        out = batch_buffer((len(entries), *shapes[0].tolist()))
        hwc = out.numpy()
        if ready.any():  # rows still to decode are placeholders here, replaced below
            self.cache.gather(np.where(ready, entries[:, OFFSET], 0), hwc)
        if where is not None:  # row by row: no large temporary (see ``SharedCache.write``)
            for i, j in zip(np.flatnonzero(~ready).tolist(), where.tolist(), strict=True):
                hwc[i] = _hwc(fresh, j)
        return out.permute(0, 3, 1, 2)

    def _image_list(
        self, entries: np.ndarray, ready: np.ndarray, fresh: Any, where: np.ndarray | None
    ) -> list[torch.Tensor]:
        """Images of different sizes, one tensor each, as an uncached batch gives them."""
        fresh_rows = iter(where.tolist() if where is not None else [])
        out = []
        for entry, hit in zip(entries, ready.tolist(), strict=True):
            if hit:
                out.append(torch.from_numpy(self.cache.image(entry)).permute(2, 0, 1))
            else:
                out.append(fresh[next(fresh_rows)])
        return out


def _first_each(values: np.ndarray) -> np.ndarray:
    """``values`` without repeats, in order of first appearance."""
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]


def _hwc(value: Any, row: int) -> np.ndarray:
    """Image ``row`` of a decoded field's batch as an ``(H, W, C)`` view."""
    return value[row].permute(1, 2, 0).numpy()


def _shapes(value: Any) -> np.ndarray:
    """``(N, 3)`` height, width, channels of a decoded image field's batch."""
    if isinstance(value, torch.Tensor):
        channels, height, width = value.shape[1:]
        return np.tile(np.array([height, width, channels], np.int64), (len(value), 1))
    return np.array([[t.shape[1], t.shape[2], t.shape[0]] for t in value], np.int64).reshape(-1, 3)
