"""Lazy mode: shards memory-mapped on first use; the page cache holds what is hot.

Costs no private memory beyond the batch being built; every process (main, each worker)
maps the files itself, so nothing is copied and the kernel shares the pages.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from loadwise.access import sigbus
from loadwise.access.base import PackedDataset, Storage
from loadwise.access.region import SUPPORTED, ShardRegion, drop_pages
from loadwise.format.fields import FieldSpec, FixedField, Segment
from loadwise.format.reader import MappedShard
from loadwise.format.spec import Manifest
from loadwise.gather.spans import starts_and_lengths
from loadwise.stores import ShardStore


class MappedStorage:
    """Memory-mapped shards, opened when first read (blocks are verified by ``PackedBase``
    as they are first read, so no whole-file hashing here).

    Fixed fields are gathered from one ``ShardRegion`` (one gather per batch whatever the
    shards); variable fields, and fixed fields where the region is not supported, per shard.
    """

    def __init__(
        self, store: ShardStore, manifest: Manifest, fields: tuple[FieldSpec, ...]
    ) -> None:
        self._store = store
        self._manifest = manifest
        self._starts = manifest.shard_starts()
        self._shards: dict[int, MappedShard] = {}
        self._touched: set[int] = set()  # shards whose variable bytes a batch read
        arrays = tuple(f for f in fields if isinstance(f, FixedField))
        self._region = ShardRegion(store, manifest, arrays) if arrays and SUPPORTED else None
        #: A shard truncated while mapped reads as zeros, then raises (``sigbus.py``).
        self._guard = sigbus.Guard(store.location, [s.name for s in manifest.shards])

    def shard(self, number: int) -> MappedShard:
        if number not in self._shards:
            spec = self._manifest.shards[number]
            self._shards[number] = mapped = MappedShard(
                self._store, spec, self._manifest.fields, False
            )
            if mapped.address is not None:
                self._guard.add(number, mapped.address, spec.num_bytes)
        elif self._guard.truncated:
            self._guard.refuse([number])
        return self._shards[number]

    def rows(self, spec: FieldSpec, indices: np.ndarray) -> np.ndarray:
        assert isinstance(spec, FixedField)
        if self._region is not None:
            return self._region.gather(spec, indices)
        owners = np.searchsorted(self._starts, indices, side="right") - 1
        first = owners[0] if len(owners) else 0
        if len(owners) == 0 or np.all(owners == first):
            return self.shard(int(first)).array(spec.name)[indices - self._starts[first]]
        out = np.empty((len(indices), *spec.shape), dtype=spec.numpy_dtype)
        for number in np.unique(owners):
            mask = owners == number
            out[mask] = self.shard(int(number)).array(spec.name)[
                indices[mask] - self._starts[number]
            ]
        return out

    def segments(self, spec: FieldSpec, indices: np.ndarray) -> Iterator[Segment]:
        """One segment per shard the batch touches (all rows in order if only one)."""
        owners = np.searchsorted(self._starts, indices, side="right") - 1
        numbers = np.unique(owners).tolist()
        for number in numbers:
            rows = None if len(numbers) == 1 else np.flatnonzero(owners == number)
            local = (indices if rows is None else indices[rows]) - self._starts[number]
            shard = self.shard(number)
            self._touched.add(number)
            starts, lengths = starts_and_lengths(shard.offsets(spec.name), local)
            yield Segment(rows, starts, lengths, shard.data(spec.name))

    def release_segments(self, spec: FieldSpec) -> None:
        """Done with the bytes of ``spec`` a batch read (decoded into the batch): their
        pages leave this process's mappings and stay in the page cache. Encoded images are
        read once per epoch, so keeping them mapped only made every worker's PSS carry the
        whole dataset's bytes (87 MB of JPEGs in the benchmark), where per-file readers
        carry none."""
        for number in self._touched:
            data = self._shards[number].data(spec.name)
            drop_pages(data.ctypes.data, data.nbytes)
        self._touched.clear()

    def close(self) -> None:
        self._guard.remove()
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
        return MappedStorage(self.store, self.manifest, self.fields)
