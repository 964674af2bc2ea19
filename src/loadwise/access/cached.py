"""Cached mode: lazy reads plus an LRU of decoded samples, bounded in bytes per process.

Worth it for encoded data (PNG/JPEG bytes): a sample is decoded once and then served from
RAM until the byte budget pushes it out. With nothing to decode (every field stored as
arrays) a cached copy would only repeat the page cache at a per-sample cost, so batches
come straight from the memory map, as in lazy mode.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from loadwise.access.base import Batch
from loadwise.access.lazy import LazyDataset
from loadwise.errors import ConfigError

DEFAULT_CACHE_BYTES = 1 << 30


class LRUBytes:
    """Least-recently-used map whose values' sizes in bytes stay under ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[int, tuple[Batch, int]] = OrderedDict()

    def get(self, key: int) -> Batch | None:
        found = self._items.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return found[0]

    def put(self, key: int, value: Batch, size: int) -> None:
        if size > self.limit or key in self._items:
            return
        self._items[key] = (value, size)
        self.bytes += size
        while self.bytes > self.limit:
            _, (_, evicted) = self._items.popitem(last=False)
            self.bytes -= evicted

    def __len__(self) -> int:
        return len(self._items)


class CachedDataset(LazyDataset):
    """Lazy access with decoded samples kept in an LRU of ``cache_bytes`` per process."""

    mode = "cached"

    def __init__(
        self,
        root: str | Path,
        *,
        fields: Sequence[str] | None = None,
        verify: str = "first_use",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        if cache_bytes < 0:
            raise ConfigError(f"`cache_bytes` must be >= 0. Found: {cache_bytes}.")
        super().__init__(root, fields=fields, verify=verify)
        self.cache = LRUBytes(cache_bytes)
        #: Whether any selected field is decoded on read (else nothing is worth caching).
        self.decodes = any(spec.codec == "image" for spec in self.fields)

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> Batch:
        idx = self._checked(indices)
        if idx.size == 0 or not self.decodes:
            return super().get_batch(idx)
        rows: dict[int, Batch] = {}
        missing = []
        for i in idx.tolist():
            row = self.cache.get(i)
            if row is None:
                missing.append(i)
            else:
                rows[i] = row
        if missing:
            fresh = super().get_batch(np.unique(missing))
            for j, i in enumerate(fresh["index"].tolist()):
                rows[i] = {k: _own(v[j : j + 1]) for k, v in fresh.items()}
                self.cache.put(i, rows[i], _size(rows[i]))
        return _concat([rows[i] for i in idx.tolist()])


def _own(value: Any) -> Any:
    """A one-row slice that does not keep the whole batch's memory alive."""
    return value.clone() if isinstance(value, torch.Tensor) else list(value)


def _size(row: Batch) -> int:
    total = 0
    for value in row.values():
        if isinstance(value, torch.Tensor):
            total += value.nbytes
        else:
            total += sum(v.nbytes if isinstance(v, torch.Tensor) else len(v) for v in value)
    return total


def _concat(rows: list[Batch]) -> Batch:
    out: Batch = {}
    for name, first in rows[0].items():
        parts = [r[name] for r in rows]
        if isinstance(first, torch.Tensor) and all(p.shape[1:] == first.shape[1:] for p in parts):
            out[name] = torch.cat(parts)
        elif isinstance(first, torch.Tensor):  # images of different sizes: a list, as uncached
            out[name] = [p[0] for p in parts]
        else:
            out[name] = [v for part in parts for v in part]
    return out
