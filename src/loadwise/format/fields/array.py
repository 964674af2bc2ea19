"""The fixed-shape array kind: one numpy array of the same dtype and shape per sample.

Stored as Arrow ``fixed_shape_tensor`` (a primitive column for scalars; ``bool`` as one byte
each), one contiguous ``values`` buffer of ``n * row_bytes`` bytes in C order, so a batch is
one row gather. Images stored decoded are uint8 arrays ``(C, H, W)``.

Values are stored little-endian whatever their byte order (a big-endian array is converted
at ``pack``; its values are kept). Dtypes neither Arrow nor torch can hold as they are
(complex, float128, datetime64, strings in arrays, Python objects) and empty rows are
refused at ``pack``, naming the field and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from loadwise.errors import ConfigError, SourceError
from loadwise.format.fields.base import BufferReader, FixedField, ReadOptions

#: What fixed-size fields may hold: bool, int, uint, float (up to 8 bytes each).
NUMERIC_KINDS = "biuf"
MAX_BYTES = 2**48


def unstorable(dtype: np.dtype) -> str | None:
    """Why values of ``dtype`` cannot be stored as numbers, or None if they can."""
    if dtype.kind in NUMERIC_KINDS and dtype.itemsize <= 8 and dtype.fields is None:
        return None
    if dtype.kind == "c":
        return (
            f"{dtype} (complex) values, which Arrow cannot hold: store `np.stack([x.real, "
            f"x.imag], -1)` or two fields"
        )
    if dtype.kind in "mM":
        unit = np.datetime_data(dtype)[0]
        return (
            f"{dtype} values: store `x.astype('int64')` (counts of `{unit}`) and keep the "
            f"unit yourself"
        )
    if dtype.kind == "f":
        return f"{dtype} values, which neither Arrow nor torch holds: convert to float64"
    if dtype.kind in "US":
        return (
            f"an array of {'str' if dtype.kind == 'U' else 'bytes'} ({dtype}): store one per field"
        )
    if dtype.kind == "O":
        return "Python objects (None, dicts, lists of unequal lengths or of mixed types)"
    return f"{dtype} values: store numbers (bool, int, uint, float), bytes or str"


def declared_dtype(dtype: Any, name: str) -> str:
    """A declared field's dtype as stored (little-endian), by name; ``ConfigError`` (a
    ``ValueError``) naming the field if it cannot be stored."""
    try:
        parsed = np.dtype(dtype)
    except TypeError:
        raise ConfigError(
            f"field `{name}` has dtype {dtype!r}, which numpy does not know."
        ) from None
    why = unstorable(parsed)
    if why is not None:
        raise ConfigError(f"field `{name}` is declared with {why}.")
    return str(parsed.newbyteorder("<") if parsed.byteorder == ">" else parsed)


def stored_dtype(dtype: np.dtype, name: str) -> np.dtype:
    """The dtype values of ``dtype`` are stored as (little-endian); ``SourceError`` if none."""
    why = unstorable(dtype)
    if why is not None:
        raise SourceError(f"field `{name}` holds {why}.")
    return dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype


def as_array(value: Any, name: str, item: str = "") -> np.ndarray:
    """``value`` as a numpy array (a torch tensor, a number, nested lists); ``SourceError``
    naming the field where numpy or torch cannot convert it."""
    where = f"sample `{item}` field `{name}`" if item else f"field `{name}`"
    if value is None:
        raise SourceError(
            f"{where} is None; loadwise stores no missing values: give every sample a value "
            f"(e.g. -1, NaN or '') or leave the field out of every sample."
        )
    if type(value).__module__.startswith("torch"):
        try:
            return value.detach().cpu().numpy()
        except (TypeError, RuntimeError) as exc:  # bfloat16 and other dtypes numpy lacks
            raise SourceError(
                f"{where} is a torch tensor numpy cannot hold ({exc}); convert it first "
                f"(e.g. `.float()`, or `.view(torch.int16)` to keep bfloat16 bits)."
            ) from None
    if isinstance(value, dict):
        raise SourceError(
            f"{where} is a dict; fields hold numbers, arrays, bytes or str: flatten it into "
            f"fields of their own (e.g. `{name}.x`)."
        )
    try:
        return np.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise SourceError(
            f"{where} is not an array of one dtype and shape ({exc}); make its nested lists "
            f"equally long, or declare a RaggedField for variable lengths."
        ) from None


@dataclass(frozen=True)
class ArrayField(FixedField):
    """``dtype`` and ``shape`` of every sample's array; ``categories`` names the values of
    an integer field (``label`` -> class names)."""

    categories: tuple[str, ...] | None = None

    kind: ClassVar[str] = "array"

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", declared_dtype(self.dtype, self.name))

    @classmethod
    def of(cls, name: str, value: Any, categories: tuple[str, ...] | None = None) -> ArrayField:
        """The field a sample's value implies (its dtype, stored little-endian, and shape)."""
        array = as_array(value, name)
        dtype = stored_dtype(array.dtype, name)
        if 0 in array.shape:
            raise SourceError(
                f"field `{name}` has shape {array.shape}: samples with no values cannot be "
                f"stored as rows. Drop the field, or declare a RaggedField for values of any "
                f"length (none included)."
            )
        return cls(name, str(dtype), tuple(array.shape), categories)

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
        if unstorable(spec.numpy_dtype) or spec.numpy_dtype.byteorder == ">":
            raise ValueError(f"field {spec.name!r} has dtype {spec.dtype!r}; only numbers")
        if any(d < 1 for d in spec.shape) or len(spec.shape) > 32 or spec.row_bytes > MAX_BYTES:
            raise ValueError(f"array field {spec.name!r} has an impossible shape {spec.shape}")
        return spec

    def check(self, value: Any, item: str, first: str) -> np.ndarray:
        array = value if type(value) is np.ndarray else as_array(value, self.name, item)
        if array.dtype == self.numpy_dtype and array.shape == self.shape:
            return array
        if array.shape == self.shape and array.dtype.newbyteorder("<") == self.numpy_dtype:
            return array.astype(self.numpy_dtype)  # big-endian: same values, stored little
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
