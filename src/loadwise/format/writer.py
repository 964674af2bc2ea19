"""Write samples into Arrow IPC shards and describe each shard's layout and checksum.

Samples arrive as dicts of prepared values (arrays, bytes, str); each shard is one Arrow
record batch, so every field is one contiguous buffer that readers map as a numpy view.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import xxhash

from loadwise.errors import SourceError
from loadwise.format.spec import BLOCK_BYTES, BufferSpan, FieldSpec, ShardSpec, block_checksums

SHARD_SUFFIX = ".arrow"
_FIRST_BYTES = 256 << 20  # row buffers start this large at most


class ShardWriter:
    """Accumulates samples and writes a shard each time about ``shard_bytes`` have gathered."""

    def __init__(
        self,
        directory: Path,
        fields: Sequence[FieldSpec],
        shard_bytes: int,
        block_bytes: int = BLOCK_BYTES,
        first_shard: int = 0,
    ) -> None:
        self.directory = directory
        self.fields = tuple(fields)
        self.shard_bytes, self.block_bytes = shard_bytes, block_bytes
        self.next_shard = first_shard
        #: Bytes every sample takes in the array fields (the variable ones come on top).
        self._fixed_bytes = sum(f.row_bytes for f in self.fields if f.kind == "array")
        rows = -(-min(shard_bytes, _FIRST_BYTES) // max(self._fixed_bytes, 1))  # a shard's most
        self._columns = {f.name: _column(f, rows) for f in self.fields}
        self._count = 0
        self._pending_bytes = 0
        self._first_item: str | None = None

    def add(self, sample: Mapping[str, Any], item: str) -> ShardSpec | None:
        """Append one sample (``item`` names it in errors); returns the shard it completed."""
        if self._first_item is None:
            self._first_item = item
        for spec in self.fields:
            value = _checked(spec, sample.get(spec.name), item, self._first_item)
            self._columns[spec.name].append(value)
            self._pending_bytes += _size(spec, value)
        self._count += 1
        return self.flush() if self._pending_bytes >= self.shard_bytes else None

    def add_rows(
        self,
        arrays: Mapping[str, np.ndarray],
        values: Mapping[str, Sequence[Any]],
        items: Sequence[str],
    ) -> tuple[int, ShardSpec | None]:
        """Append samples given as columns (``arrays``: a block of rows per array field,
        ``values``: a list per bytes/string field), up to the first that completes a shard.

        Returns how many were taken and that shard: the same shards as ``add`` one by one,
        at a copy per block instead of Python work per sample.
        """
        if self._first_item is None:
            self._first_item = items[0]
        columns: dict[str, Any] = {
            f.name: _checked_column(f, arrays, values, items, self._first_item) for f in self.fields
        }
        taken = self._rows_that_fit(columns)
        for spec in self.fields:
            self._columns[spec.name].extend(columns[spec.name][:taken])
        self._count += taken
        full = self._pending_bytes >= self.shard_bytes
        return taken, self.flush() if full else None

    def _rows_that_fit(self, columns: Mapping[str, Any]) -> int:
        """Rows of ``columns`` up to and with the first that fills the shard; counts their
        bytes as pending."""
        sizes = np.full(len(next(iter(columns.values()))), self._fixed_bytes, np.int64)
        for spec in self.fields:
            if spec.kind != "array":
                sizes += np.fromiter(map(len, columns[spec.name]), np.int64, len(sizes))
        ends = self._pending_bytes + np.cumsum(sizes)
        taken = min(len(sizes), int(np.searchsorted(ends, self.shard_bytes)) + 1)
        self._pending_bytes = int(ends[taken - 1])
        return taken

    def flush(self) -> ShardSpec | None:
        """Write what has gathered as the next shard (nothing if empty), fsynced."""
        count = self._count
        if count == 0:
            return None
        batch = pa.record_batch(
            [_to_arrow(f, self._columns[f.name].values()) for f in self.fields],
            names=[f.name for f in self.fields],
        )
        path = self.directory / f"{self.next_shard:05d}{SHARD_SUFFIX}"
        _write_batch(path, batch)
        del batch  # it views the column buffers, which the next shard reuses
        self.next_shard += 1
        for column in self._columns.values():
            column.clear()
        self._count = self._pending_bytes = 0
        return describe_shard(path, self.fields, count, self.block_bytes)


class _Rows:
    """An array field's rows of the shard being gathered, copied into one buffer reused
    shard after shard: no stacking copy, no fresh pages per shard.

    The buffer starts at the most rows a shard can hold, up to ``_FIRST_BYTES`` (only the
    pages rows are written to are ever backed): growing it from 64 rows by doubling cost a
    copy and fresh pages per doubling. Beyond that it still doubles.
    """

    def __init__(self, spec: FieldSpec, rows: int) -> None:
        self._buffer = np.empty((max(1, rows), *spec.shape), spec.numpy_dtype)
        self._rows = 0

    def append(self, value: np.ndarray) -> None:
        if self._rows == len(self._buffer):
            self._grow()
        self._buffer[self._rows] = value
        self._rows += 1

    def extend(self, block: np.ndarray) -> None:
        while self._rows + len(block) > len(self._buffer):
            self._grow()
        self._buffer[self._rows : self._rows + len(block)] = block
        self._rows += len(block)

    def _grow(self) -> None:
        grown = np.empty((2 * len(self._buffer), *self._buffer.shape[1:]), self._buffer.dtype)
        grown[: self._rows] = self._buffer[: self._rows]
        self._buffer = grown

    def values(self) -> np.ndarray:
        return self._buffer[: self._rows]

    def clear(self) -> None:
        self._rows = 0


class _Items:
    """A bytes or string field's values of the shard being gathered."""

    def __init__(self) -> None:
        self._items: list[Any] = []

    def append(self, value: Any) -> None:
        self._items.append(value)

    def extend(self, values: Sequence[Any]) -> None:
        self._items.extend(values)

    def values(self) -> list[Any]:
        return self._items

    def clear(self) -> None:
        self._items = []


def _column(spec: FieldSpec, rows: int) -> _Rows | _Items:
    return _Rows(spec, rows) if spec.kind == "array" else _Items()


def describe_shard(
    path: Path, fields: Sequence[FieldSpec], num_samples: int, block_bytes: int = BLOCK_BYTES
) -> ShardSpec:
    """Find where each field's buffers lie in the written file; checksum it whole and by block."""
    with pa.memory_map(str(path)) as mapped:
        whole = mapped.read_buffer()
        batch = pa.ipc.open_file(whole).get_batch(0)
        buffers = {
            f.name: _spans(f, batch.column(f.name), whole.address, num_samples) for f in fields
        }
        return ShardSpec(
            name=path.name,
            num_samples=num_samples,
            num_bytes=whole.size,
            xxh3_64=xxhash.xxh3_64_hexdigest(memoryview(whole)),
            buffers=buffers,
            block_bytes=block_bytes,
            block_xxh3=block_checksums(memoryview(whole), block_bytes),
        )


def _spans(spec: FieldSpec, column: pa.Array, base: int, n: int) -> dict[str, BufferSpan]:
    storage = column.storage if isinstance(column, pa.ExtensionArray) else column
    found = storage.buffers()
    if spec.kind == "array":
        values = found[-1]
        return {"values": _span(values, base, n * spec.row_bytes)}
    offsets, data = found[1], found[2]
    end = int(np.frombuffer(offsets, dtype=np.int64, count=n + 1)[-1])
    return {"offsets": _span(offsets, base, (n + 1) * 8), "data": _span(data, base, end)}


def _span(buffer: pa.Buffer | None, base: int, length: int) -> BufferSpan:
    if buffer is None or length == 0:
        return BufferSpan(offset=0, length=0)
    return BufferSpan(offset=buffer.address - base, length=length)


def _write_batch(path: Path, batch: pa.RecordBatch) -> None:
    """Write through Arrow's own file (no Python file object: the GIL is free meanwhile and
    nothing is copied through Python), then fsync."""
    with pa.OSFile(str(path), "wb") as handle, pa.ipc.new_file(handle, batch.schema) as writer:
        writer.write_batch(batch)
    fsync_path(path)


def _to_arrow(spec: FieldSpec, values: np.ndarray | list[Any]) -> pa.Array:
    """The field's Arrow array, built from its buffers: for array fields a view of
    ``values``, not a copy. (``pa.array`` imports pandas on first use, ~0.5-1.4 s of every
    fresh ``pack`` here.)"""
    if isinstance(values, list):
        return _variable(values, pa.large_binary() if spec.kind == "bytes" else pa.large_string())
    rows = np.ascontiguousarray(values)
    if rows.dtype == np.bool_:  # Arrow packs booleans into bits; keep one byte each
        rows = rows.view(np.uint8)
    flat = pa.Array.from_buffers(
        pa.from_numpy_dtype(rows.dtype), rows.size, [None, pa.py_buffer(rows)]
    )
    if not spec.shape:
        return flat
    storage = pa.FixedSizeListArray.from_arrays(flat, math.prod(spec.shape))
    kind = pa.fixed_shape_tensor(flat.type, spec.shape, permutation=list(range(len(spec.shape))))
    return pa.ExtensionArray.from_storage(kind, storage)


def _variable(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
    """A ``large_binary`` or ``large_string`` array of ``values``: offsets, then the data."""
    data = [v.encode() for v in values] if kind == pa.large_string() else values
    offsets = np.zeros(len(data) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, data), np.int64, len(data)), out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    return pa.Array.from_buffers(kind, len(data), buffers)


def _checked(spec: FieldSpec, value: Any, item: str, first: str) -> Any:
    """Refuse a value of the wrong type, dtype or shape, naming the sample and the field."""
    if value is None:
        raise SourceError(f"sample `{item}` has no field `{spec.name}`; every sample needs it.")
    if spec.kind == "bytes" and isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if spec.kind == "string" and isinstance(value, str):
        return value
    if spec.kind == "array":
        array = np.asarray(value)
        if array.dtype == spec.numpy_dtype and array.shape == spec.shape:
            return array
        found = f"dtype {array.dtype}, shape {array.shape}"
        raise SourceError(
            f"sample `{item}` field `{spec.name}` has {found}, but the first sample `{first}` "
            f"has dtype {spec.dtype}, shape {spec.shape}. Make all samples alike (for images, "
            f"pass `image_size=` for one size and `image_mode=` for one colour mode)."
        )
    raise SourceError(
        f"sample `{item}` field `{spec.name}` is a {type(value).__name__}; "
        f"this field holds {spec.kind}."
    )


def _checked_column(
    spec: FieldSpec,
    arrays: Mapping[str, np.ndarray],
    values: Mapping[str, Sequence[Any]],
    items: Sequence[str],
    first: str,
) -> np.ndarray | list[Any]:
    """One field's values of a block of samples, checked as ``_checked`` checks one value."""
    if spec.kind != "array":
        column = values.get(spec.name, [None] * len(items))
        return [_checked(spec, v, item, first) for v, item in zip(column, items, strict=True)]
    block = arrays.get(spec.name)
    if block is not None and (block.dtype, block.shape) == (
        spec.numpy_dtype,
        (len(items), *spec.shape),
    ):
        return block
    found = "nothing" if block is None else f"dtype {block.dtype}, shape {block.shape}"
    raise SourceError(
        f"samples `{items[0]}` to `{items[-1]}`: field `{spec.name}` has {found}, but "
        f"{len(items)} rows of dtype {spec.dtype}, shape {spec.shape} were expected."
    )


def _size(spec: FieldSpec, value: Any) -> int:
    return spec.row_bytes if spec.kind == "array" else len(value)


def fsync_path(path: Path) -> None:
    """Flush a written file, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
