"""Lazy mode: shards memory-mapped on first use; the page cache holds what is hot.

Costs no private memory beyond the batch being built; every process (main, each worker)
maps the files itself, so nothing is copied and the kernel shares the pages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadwise.access.base import PackedDataset, Storage
from loadwise.access.region import SUPPORTED, ShardRegion
from loadwise.format.reader import MappedShard
from loadwise.format.spec import FieldSpec, Manifest


class MappedStorage:
    """Memory-mapped shards, opened when first read (blocks are verified by ``PackedBase``
    as they are first read, so no whole-file hashing here).

    Array fields are gathered from one ``ShardRegion`` (one gather per batch whatever the
    shards); byte fields, and array fields where the region is not supported, per shard.
    """

    def __init__(self, root: Path, manifest: Manifest, fields: tuple[FieldSpec, ...]) -> None:
        self._root = root
        self._manifest = manifest
        self._starts = manifest.shard_starts()
        self._shards: dict[int, MappedShard] = {}
        arrays = tuple(f for f in fields if f.kind == "array")
        self._region = ShardRegion(root, manifest, arrays) if arrays and SUPPORTED else None

    def shard(self, number: int) -> MappedShard:
        if number not in self._shards:
            spec = self._manifest.shards[number]
            self._shards[number] = MappedShard(self._root, spec, self._manifest.fields, False)
        return self._shards[number]

    def gather_array(self, spec: FieldSpec, indices: np.ndarray) -> np.ndarray:
        if self._region is not None:
            return self._region.gather(spec, indices)
        owners = np.searchsorted(self._starts, indices, side="right") - 1
        first = owners[0] if len(owners) else 0
        if len(owners) == 0 or np.all(owners == first):
            return self.shard(int(first)).array(spec.name)[indices - self._starts[first]]
        out = np.empty((len(indices), *spec.shape), dtype=spec.dtype)
        for number in np.unique(owners):
            mask = owners == number
            out[mask] = self.shard(int(number)).array(spec.name)[
                indices[mask] - self._starts[number]
            ]
        return out

    def gather_bytes(self, spec: FieldSpec, indices: np.ndarray) -> list[bytes]:
        owners = np.searchsorted(self._starts, indices, side="right") - 1
        out = []
        for index, number in zip(indices.tolist(), owners.tolist(), strict=True):
            shard = self.shard(number)
            local = index - int(self._starts[number])
            offsets = shard.offsets(spec.name)
            out.append(shard.data(spec.name)[offsets[local] : offsets[local + 1]].tobytes())
        return out

    def close(self) -> None:
        if self._region is not None:
            self._region.close()
            self._region = None
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()


class LazyDataset(PackedDataset):
    """Memory-mapped access: opens instantly at any size; reads hit the page cache."""

    mode = "lazy"

    def _open_storage(self) -> Storage:
        return MappedStorage(self.root, self.manifest, self.fields)
