"""The fixed-shape array kind: one numpy array of the same dtype and shape per sample.

Stored as Arrow ``fixed_shape_tensor`` (a primitive column for scalars; ``bool`` as one byte
each), one contiguous ``values`` buffer of ``n * row_bytes`` bytes in C order, so a batch is
one row gather. Images stored decoded are uint8 arrays ``(C, H, W)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from loadwise.errors import SourceError
from loadwise.format.fields.base import BufferReader, FixedField, ReadOptions

#: What fixed-size fields may hold: bool, int, uint, float.
NUMERIC_KINDS = "biuf"
MAX_BYTES = 2**48


@dataclass(frozen=True)
class ArrayField(FixedField):
    """``dtype`` and ``shape`` of every sample's array; ``categories`` names the values of
    an integer field (``label`` -> class names)."""

    categories: tuple[str, ...] | None = None

    kind: ClassVar[str] = "array"

    @classmethod
    def of(cls, name: str, value: Any, categories: tuple[str, ...] | None = None) -> ArrayField:
        """The field a sample's value implies (its dtype and shape)."""
        array = np.asarray(value)
        if array.dtype == object or array.dtype.kind not in NUMERIC_KINDS:
            raise SourceError(
                f"field `{name}` holds {array.dtype} values; store numbers, arrays, bytes or str."
            )
        return cls(name, str(array.dtype), tuple(array.shape), categories)

    def _options(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape), "categories": self.categories}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ArrayField:
        categories = raw.get("categories")
        spec = cls(
            name=str(raw["name"]),
            dtype=str(np.dtype(raw["dtype"])),
            shape=tuple(int(d) for d in raw.get("shape", ())),
            categories=None if categories is None else tuple(str(c) for c in categories),
        )
        if spec.numpy_dtype.kind not in NUMERIC_KINDS:
            raise ValueError(f"field {spec.name!r} has dtype {spec.dtype!r}; only numbers")
        if any(d < 0 for d in spec.shape) or len(spec.shape) > 32 or spec.row_bytes > MAX_BYTES:
            raise ValueError(f"array field {spec.name!r} has an impossible shape {spec.shape}")
        return spec

    def check(self, value: Any, item: str, first: str) -> np.ndarray:
        array = np.asarray(value)
        if array.dtype == self.numpy_dtype and array.shape == self.shape:
            return array
        raise SourceError(
            f"sample `{item}` field `{self.name}` has dtype {array.dtype}, shape {array.shape}, "
            f"but the first sample `{first}` has dtype {self.dtype}, shape {self.shape}. Make "
            f"all samples alike (for images, pass `image_size=` for one size and `image_mode=` "
            f"for one colour mode)."
        )

    def stored_bytes(self, value: Any) -> int:
        return self.row_bytes

    def column(self, rows: int) -> RowColumn:
        return RowColumn(self, rows)

    def to_arrow(self, values: np.ndarray) -> pa.Array:
        """Built from the buffer (a view, not a copy); ``pa.array`` would import pandas on
        first use, ~0.5-1.4 s of every fresh ``pack`` here."""
        rows = np.ascontiguousarray(values)
        if rows.dtype == np.bool_:  # Arrow packs booleans into bits; keep one byte each
            rows = rows.view(np.uint8)
        flat = pa.Array.from_buffers(
            pa.from_numpy_dtype(rows.dtype), rows.size, [None, pa.py_buffer(rows)]
        )
        if not self.shape:
            return flat
        storage = pa.FixedSizeListArray.from_arrays(flat, math.prod(self.shape))
        kind = pa.fixed_shape_tensor(
            flat.type, self.shape, permutation=list(range(len(self.shape)))
        )
        return pa.ExtensionArray.from_storage(kind, storage)

    def arrow_buffers(self, array: pa.Array) -> dict[str, pa.Buffer | None]:
        storage = array.storage if isinstance(array, pa.ExtensionArray) else array
        return {"values": storage.buffers()[-1]}

    def read_batch(
        self, reader: BufferReader, indices: np.ndarray, options: ReadOptions
    ) -> dict[str, Any]:
        import torch  # only readers need torch; ``pack`` does not import it

        return {self.name: torch.from_numpy(reader.rows(self, indices))}


class RowColumn:
    """An array field's rows of the shard being gathered, copied into one buffer reused
    shard after shard: no stacking copy, no fresh pages per shard.

    The buffer starts at the most rows a shard can hold (the writer caps it at 256 MiB; only
    the pages rows are written to are ever backed): growing it from 64 rows by doubling cost
    a copy and fresh pages per doubling. Beyond that it still doubles.
    """

    def __init__(self, spec: ArrayField, rows: int) -> None:
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
