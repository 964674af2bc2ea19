"""Streaming mode: constant memory, reading only the bytes each batch needs.

Samples are read with ``pread`` into the batch (nothing is mapped, nothing kept), in a
block-shuffled order that stays within a window of shards. As an ``IterableDataset`` it
splits batches across ``torch.distributed`` ranks and DataLoader workers by itself.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import IterableDataset

from loadwise.access.base import Batch, PackedBase, Storage
from loadwise.errors import IntegrityError
from loadwise.format.reader import check_layout, check_offsets, check_size
from loadwise.format.spec import FieldSpec, Manifest, ShardSpec
from loadwise.sampling.order import batches, block_order, partition
from loadwise.sampling.ranks import distributed_rank, worker_slot

DEFAULT_WINDOW = 4
_CHUNK = 64
_MAX_OPEN = 16
#: Below this, a batch's rows of one shard are read as one span (bounded memory).
_SPAN_BYTES = 256 * 1024


class _OpenShard:
    """A file descriptor plus the small offset tables of its variable-length fields."""

    def __init__(self, root: Path, spec: ShardSpec, fields: tuple[FieldSpec, ...]):
        path = root / spec.name
        check_size(path, spec)
        check_layout(spec, fields)
        self.spec = spec
        self.fd = os.open(path, os.O_RDONLY)
        self.offsets = {f.name: self._offsets(f) for f in fields if f.kind != "array"}

    def read_into(self, row: memoryview, offset: int) -> None:
        if os.preadv(self.fd, [row], offset) != len(row):
            raise IntegrityError(
                f"shard `{self.spec.name}` ended early: it changed since it was opened."
            )

    def read(self, length: int, offset: int) -> bytes:
        data = os.pread(self.fd, length, offset)
        if len(data) != length:
            raise IntegrityError(
                f"shard `{self.spec.name}` ended early: it changed since it was opened."
            )
        return data

    def _offsets(self, spec: FieldSpec) -> np.ndarray:
        span = self.spec.buffers[spec.name]["offsets"]
        offsets = np.frombuffer(self.read(span.length, span.offset), dtype=np.int64)
        check_offsets(offsets, self.spec, spec.name, self.spec.buffers[spec.name]["data"].length)
        return offsets

    def close(self) -> None:
        os.close(self.fd)


class PreadStorage:
    """Reads rows straight from the files into the batch; keeps at most a few shards open.

    Blocks are verified by ``PackedBase`` as they are first read (no whole-file hashing)."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self._root, self._manifest = root, manifest
        self._starts = manifest.shard_starts()
        self._open: OrderedDict[int, _OpenShard] = OrderedDict()

    def gather_array(self, spec: FieldSpec, indices: np.ndarray) -> np.ndarray:
        """Rows read straight into the batch: one ``pread`` per row, or one read of the
        whole span when it is small (labels and other narrow fields: one syscall)."""
        out = np.empty((len(indices), *spec.shape), dtype=spec.dtype)
        size = spec.row_bytes
        rows = out.view(np.uint8).reshape(len(indices), size)
        owners = np.searchsorted(self._starts, indices, side="right") - 1
        for number in np.unique(owners).tolist():
            positions = np.flatnonzero(owners == number)
            shard = self._shard(number)
            local = indices[positions] - self._starts[number]
            base = shard.spec.buffers[spec.name]["values"].offset
            low, high = int(local.min()), int(local.max()) + 1
            if (high - low) * size <= max(_SPAN_BYTES, 4 * len(positions) * size):
                span = shard.read((high - low) * size, base + low * size)
                rows[positions] = np.frombuffer(span, np.uint8).reshape(high - low, size)[
                    local - low
                ]
                continue
            for j, start in zip(positions.tolist(), (base + local * size).tolist(), strict=True):
                shard.read_into(memoryview(rows[j]), start)
        return out

    def gather_bytes(self, spec: FieldSpec, indices: np.ndarray) -> list[bytes]:
        out = []
        for shard, local in self._locate(indices):
            offsets = shard.offsets[spec.name]
            start = shard.spec.buffers[spec.name]["data"].offset + int(offsets[local])
            out.append(shard.read(int(offsets[local + 1] - offsets[local]), start))
        return out

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()

    def _locate(self, indices: np.ndarray) -> Iterator[tuple[_OpenShard, int]]:
        owners = np.searchsorted(self._starts, indices, side="right") - 1
        for index, number in zip(indices.tolist(), owners.tolist(), strict=True):
            yield self._shard(number), index - int(self._starts[number])

    def _shard(self, number: int) -> _OpenShard:
        if number in self._open:
            self._open.move_to_end(number)
            return self._open[number]
        spec = self._manifest.shards[number]
        self._open[number] = _OpenShard(self._root, spec, self._manifest.fields)
        if len(self._open) > _MAX_OPEN:
            self._open.popitem(last=False)[1].close()
        return self._open[number]


class StreamingDataset(PackedBase, IterableDataset):
    """Iterates samples in block-shuffled order; call ``set_epoch`` each epoch to reshuffle."""

    mode = "streaming"

    def __init__(
        self,
        root: str | Path,
        *,
        fields: Sequence[str] | None = None,
        verify: str = "first_use",
        shuffle: bool = True,
        seed: int = 0,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        super().__init__(root, fields=fields, verify=verify)
        self.shuffle, self.seed, self.window, self.epoch = shuffle, seed, window, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self, epoch: int, seed: int | None = None, shuffle: bool | None = None) -> np.ndarray:
        """This epoch's global sample order (before splitting across ranks and workers)."""
        sizes = [s.num_samples for s in self.manifest.shards]
        seed = self.seed if seed is None else seed
        shuffle = self.shuffle if shuffle is None else shuffle
        return block_order(sizes, seed, epoch, self.window, shuffle)

    def __iter__(self) -> Iterator[Batch]:
        rank, world = distributed_rank()
        worker, workers = worker_slot()
        mine = partition(self.order(self.epoch), rank, world)
        for chunk in batches(mine, _CHUNK)[worker::workers]:
            batch = self.get_batch(chunk)
            for i in range(len(chunk)):
                yield {name: value[i] for name, value in batch.items()}

    def _open_storage(self) -> Storage:
        return PreadStorage(self.root, self.manifest)
