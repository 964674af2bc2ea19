"""Streaming mode: constant memory, reading only the bytes each batch needs.

Samples are read with ``pread`` into the batch (nothing is mapped, nothing kept), in a
block-shuffled order that stays within a window of shards. As an ``IterableDataset`` it
splits batches across ``torch.distributed`` ranks and DataLoader workers by itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import IterableDataset

from loadwise.access.base import Batch, PackedBase, Storage
from loadwise.format.fields import FieldSpec, FixedField, Segment
from loadwise.format.reader import check_layout, check_offsets
from loadwise.format.spec import Manifest, ShardSpec
from loadwise.sampling.order import batches, block_order, partition
from loadwise.sampling.ranks import distributed_rank, worker_slot
from loadwise.stores import ShardFile, ShardStore

DEFAULT_WINDOW = 4
_CHUNK = 64
_MAX_OPEN = 16
#: Below this, a batch's rows of one shard are read as one span (bounded memory).
_SPAN_BYTES = 256 * 1024


class _OpenShard:
    """An open shard file plus the small offset tables of its variable-length fields."""

    def __init__(self, store: ShardStore, spec: ShardSpec, fields: tuple[FieldSpec, ...]):
        check_layout(spec, fields)
        self.spec = spec
        self.file: ShardFile = store.open(spec.name, spec.num_bytes)
        self.offsets = {f.name: self._offsets(f) for f in fields if not f.fixed}

    def _offsets(self, spec: FieldSpec) -> np.ndarray:
        span = self.spec.buffers[spec.name]["offsets"]
        offsets = np.frombuffer(self.file.read(span.length, span.offset), dtype=np.int64)
        check_offsets(offsets, self.spec, spec, self.spec.buffers[spec.name]["data"].length)
        return offsets

    def close(self) -> None:
        self.file.close()


class PreadStorage:
    """Reads rows straight from the files into the batch; keeps at most a few shards open.

    Blocks are verified by ``PackedBase`` as they are first read (no whole-file hashing)."""

    def __init__(self, store: ShardStore, manifest: Manifest) -> None:
        self._store, self._manifest = store, manifest
        self._starts = manifest.shard_starts()
        self._open: OrderedDict[int, _OpenShard] = OrderedDict()

    def rows(self, spec: FieldSpec, indices: np.ndarray) -> np.ndarray:
        """Rows read straight into the batch: one ``pread`` per row, or one read of the
        whole span when it is small (labels and other narrow fields: one syscall)."""
        assert isinstance(spec, FixedField)
        out = np.empty((len(indices), *spec.shape), dtype=spec.numpy_dtype)
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
                span = shard.file.read((high - low) * size, base + low * size)
                rows[positions] = np.frombuffer(span, np.uint8).reshape(high - low, size)[
                    local - low
                ]
                continue
            shard.file.read_rows(rows, positions, base, size, local)
        return out

    def segments(self, spec: FieldSpec, indices: np.ndarray) -> Iterator[Segment]:
        """Per shard, its samples' values read one after another into one flat buffer."""
        itemsize = spec.element_dtype.itemsize
        owners = np.searchsorted(self._starts, indices, side="right") - 1
        numbers = np.unique(owners).tolist()
        for number in numbers:
            rows = None if len(numbers) == 1 else np.flatnonzero(owners == number)
            local = (indices if rows is None else indices[rows]) - self._starts[number]
            shard = self._shard(number)
            offsets = shard.offsets[spec.name]
            starts, lengths = offsets[local], offsets[local + 1] - offsets[local]
            flat = np.empty(int(lengths.sum()), spec.element_dtype)
            into = memoryview(flat.view(np.uint8))  # type: ignore[arg-type]  # a buffer
            data = shard.spec.buffers[spec.name]["data"].offset
            spans = zip(
                (data + starts * itemsize).tolist(), (lengths * itemsize).tolist(), strict=True
            )
            shard.file.read_spans(into, spans)
            within = np.zeros(len(lengths), np.int64)  # where each sample starts in ``flat``
            np.cumsum(lengths[:-1], out=within[1:])
            yield Segment(rows, within, lengths, flat)

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()

    def _shard(self, number: int) -> _OpenShard:
        if number in self._open:
            self._open.move_to_end(number)
            return self._open[number]
        spec = self._manifest.shards[number]
        self._open[number] = _OpenShard(self._store, spec, self._manifest.fields)
        if len(self._open) > _MAX_OPEN:
            self._open.popitem(last=False)[1].close()
        return self._open[number]


class StreamingDataset(PackedBase, IterableDataset):
    """Iterates samples in block-shuffled order; call ``set_epoch`` each epoch to reshuffle."""

    mode = "streaming"

    def __init__(
        self,
        root: str | Path | ShardStore,
        *,
        fields: Sequence[str] | None = None,
        verify: str = "first_use",
        ragged: str = "padded",
        crop: int | tuple[int, int] | None = None,
        shuffle: bool = True,
        seed: int = 0,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        super().__init__(root, fields=fields, verify=verify, ragged=ragged, crop=crop)
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
        return PreadStorage(self.store, self.manifest)
