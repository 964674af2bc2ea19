"""The bytes and string kinds: a value of any length per sample, stored end to end.

Arrow ``large_binary`` / ``large_string`` (UTF-8): int64 ``offsets`` and a ``data`` buffer.
A batch is a list of ``bytes`` or ``str``, one per sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from loadwise.errors import IntegrityError, SourceError
from loadwise.format.fields.base import (
    BufferReader,
    FieldSpec,
    ReadOptions,
    Segment,
    offsets_of,
    variable_arrow,
)


@dataclass(frozen=True)
class BytesField(FieldSpec):
    """Raw bytes per sample (an encoded file, a serialised record): returned as stored."""

    kind: ClassVar[str] = "bytes"
    arrow_type: ClassVar[pa.DataType] = pa.large_binary()

    @classmethod
    def infer(cls, name: str, value: Any) -> FieldSpec | None:
        return cls(name) if isinstance(value, bytes | bytearray | memoryview) else None

    def check(self, value: Any, item: str, first: str) -> bytes:
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        raise self.refuse(value, item, "bytes")

    def stored_bytes(self, value: bytes) -> int:
        return len(value)

    def to_arrow(self, values: list[bytes]) -> pa.Array:
        count = len(values)
        return variable_arrow(
            self.arrow_type, offsets_of(map(len, values), count), b"".join(values), count
        )

    def arrow_buffers(self, array: pa.Array) -> dict[str, pa.Buffer | None]:
        buffers = array.buffers()
        return {"offsets": buffers[1], "data": buffers[2]}

    def read_batch(
        self, reader: BufferReader, indices: np.ndarray, options: ReadOptions
    ) -> dict[str, Any]:
        return {self.name: byte_values(reader.segments(self, indices), len(indices))}


@dataclass(frozen=True)
class StringField(BytesField):
    """Text per sample, stored as UTF-8 (checked at ``pack``: no lone surrogates)."""

    kind: ClassVar[str] = "string"
    arrow_type: ClassVar[pa.DataType] = pa.large_string()

    @classmethod
    def infer(cls, name: str, value: Any) -> FieldSpec | None:
        return cls(name) if isinstance(value, str) else None

    def check(self, value: Any, item: str, first: str) -> bytes:
        if not isinstance(value, str):
            raise self.refuse(value, item, "str")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise SourceError(
                f"sample `{item}` field `{self.name}` is not valid text ({exc.reason} at "
                f"character {exc.start}); fix the string or store it as bytes."
            ) from None

    def read_batch(
        self, reader: BufferReader, indices: np.ndarray, options: ReadOptions
    ) -> dict[str, Any]:
        raw = byte_views(reader.segments(self, indices), len(indices))
        try:  # decoded straight from the stored bytes: no bytes copy per sample first
            return {self.name: [str(value, "utf-8") for value in raw]}
        except UnicodeDecodeError as exc:  # pack stored UTF-8: the layout read is not its own
            raise IntegrityError(
                f"field `{self.name}`: stored text is not UTF-8 ({exc.reason}), so the "
                f"manifest's buffer layout does not match its shard. Run `loadwise verify` "
                f"on the dataset and pack it again."
            ) from None


def byte_values(segments: Iterator[Segment], count: int) -> list[bytes]:
    """Each sample's bytes (a copy), in batch order."""
    return [bytes(view) for view in byte_views(segments, count)]


def byte_views(segments: Iterator[Segment], count: int) -> list[memoryview]:
    """Each sample's bytes as a view of the storage's buffer (no copy), in batch order:
    for use within the batch being made (decoding), never handed to users."""
    out: list[memoryview] = []
    for segment in segments:
        data = memoryview(segment.values.view(np.uint8))  # type: ignore[arg-type]  # a buffer
        ends = (segment.starts + segment.lengths).tolist()
        views = [data[a:b] for a, b in zip(segment.starts.tolist(), ends, strict=True)]
        if segment.rows is None:
            return views
        if not out:
            out = [data[:0]] * count
        for row, view in zip(segment.rows.tolist(), views, strict=True):
            out[row] = view
    return out
