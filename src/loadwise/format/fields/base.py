"""What every field kind is: how it is described, stored in a shard, and read back as a batch.

A field kind is one ``FieldSpec`` subclass: its manifest entry (``to_dict``/``from_dict``),
its Arrow type and buffers, the checks a sample's value must pass, the column that gathers
a shard's values, and how a batch is read from a mode's buffers (``read_batch``). Two byte
layouts exist, and storages know only these: **fixed** (one row of ``row_bytes`` per sample
in a ``values`` buffer) and **variable** (int64 ``offsets``, ``n + 1`` of them, into a
``data`` buffer of elements of ``element_dtype``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import pyarrow as pa

from loadwise.errors import SourceError

FIXED_BUFFERS = ("values",)
VARIABLE_BUFFERS = ("offsets", "data")
_UINT8 = np.dtype(np.uint8)


@dataclass(frozen=True)
class ReadOptions:
    """How batches come out of a dataset. ``ragged``: variable-length arrays as a padded
    tensor plus ``<name>_lengths`` (``"padded"``) or as a list of tensors (``"list"``).
    ``crop``: images (the ``image`` kind) come out as their centre ``(height, width)``,
    cut while they decode (``format/crop.py``)."""

    ragged: str = "padded"
    crop: tuple[int, int] | None = None


@dataclass(frozen=True)
class Segment:
    """Some of a batch's samples of one variable-length field, read from one flat array.

    ``values`` is 1-D (elements of the field's ``element_dtype``); sample ``j`` of the
    segment is ``values[starts[j] : starts[j] + lengths[j]]`` and goes to batch row
    ``rows[j]`` (all rows in order when ``rows`` is None).
    """

    rows: np.ndarray | None
    starts: np.ndarray
    lengths: np.ndarray
    values: np.ndarray


class BufferReader(Protocol):
    """What a mode's storage gives field kinds (indices are global and already checked)."""

    def rows(self, spec: FieldSpec, indices: np.ndarray) -> np.ndarray:
        """A fixed field's rows ``(len(indices), *shape)``: one gather, a new array."""
        ...

    def segments(self, spec: FieldSpec, indices: np.ndarray) -> Iterator[Segment]:
        """A variable field's values of ``indices``, as segments covering every row once."""
        ...


@dataclass(frozen=True)
class FieldSpec:
    """One named field of every sample. Subclasses are the field kinds (``fields/``)."""

    name: str

    #: The kind's name in the manifest.
    kind: ClassVar[str] = ""
    #: One row of ``row_bytes`` per sample (else offsets into a data buffer).
    fixed: ClassVar[bool] = False

    @property
    def buffers(self) -> tuple[str, ...]:
        """Names of the buffers this field occupies in each shard."""
        return FIXED_BUFFERS if self.fixed else VARIABLE_BUFFERS

    @property
    def element_dtype(self) -> np.dtype:
        """The dtype of a variable field's data elements (bytes, unless said otherwise)."""
        return _UINT8

    @property
    def row_bytes(self) -> int:
        """Bytes per sample of a fixed field."""
        raise NotImplementedError(f"field `{self.name}` ({self.kind}) has no fixed rows")

    # -- the manifest -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry: name, kind and the kind's own options."""
        return {"name": self.name, "kind": self.kind, **self._options()}

    def _options(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FieldSpec:
        """The field a manifest entry describes; ``ValueError`` if it is inconsistent."""
        return cls(name=str(raw["name"]))

    # -- writing ------------------------------------------------------------------------------

    def check(self, value: Any, item: str, first: str) -> Any:
        """``value`` as this field stores it; ``SourceError`` naming the sample if it cannot
        be (``first`` names the sample the field was inferred from)."""
        raise NotImplementedError

    def stored_bytes(self, value: Any) -> int:
        """Bytes a checked value takes in the shard."""
        raise NotImplementedError

    def column(self, rows: int) -> Column:
        """An empty column gathering one shard's checked values (``rows``: a shard's most)."""
        return ItemColumn()

    def to_arrow(self, values: Any) -> pa.Array:
        """A shard's values (what ``column().values()`` holds) as an Arrow array."""
        raise NotImplementedError

    def arrow_buffers(self, array: pa.Array) -> dict[str, pa.Buffer | None]:
        """This field's buffers inside ``to_arrow``'s array, by name (``buffers``)."""
        raise NotImplementedError

    # -- reading ------------------------------------------------------------------------------

    def read_batch(
        self, reader: BufferReader, indices: np.ndarray, options: ReadOptions
    ) -> dict[str, Any]:
        """The batch entries of this field for ``indices``: ``{name: value}``, plus any
        companion entries the kind adds (e.g. ``<name>_lengths``)."""
        raise NotImplementedError

    def refuse(self, value: Any, item: str, what: str) -> SourceError:
        """The error for a value this field cannot store."""
        return SourceError(
            f"sample `{item}` field `{self.name}` is a {type(value).__name__}; "
            f"this field holds {what}."
        )


@dataclass(frozen=True)
class FixedField(FieldSpec):
    """The fixed layout: every sample one array of ``dtype`` and ``shape``, one row of
    ``row_bytes`` in the ``values`` buffer. Storages gather these rows; kinds with this
    layout subclass it."""

    dtype: str = "float32"
    shape: tuple[int, ...] = ()

    fixed: ClassVar[bool] = True

    @functools.cached_property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @functools.cached_property
    def row_bytes(self) -> int:  # cached: asked per sample and per batch
        return self.numpy_dtype.itemsize * math.prod(self.shape)  # Python ints: no overflow

    def check_block(self, block: np.ndarray | None, items: list[str]) -> np.ndarray:
        """A block of rows for ``items`` (from ``pack``'s workers), checked as a whole."""
        if block is not None and (block.dtype, block.shape) == (
            self.numpy_dtype,
            (len(items), *self.shape),
        ):
            return block
        found = "nothing" if block is None else f"dtype {block.dtype}, shape {block.shape}"
        raise SourceError(
            f"samples `{items[0]}` to `{items[-1]}`: field `{self.name}` has {found}, but "
            f"{len(items)} rows of dtype {self.dtype}, shape {self.shape} were expected."
        )


class Column(Protocol):
    """One shard's values of one field while the shard is being gathered."""

    def append(self, value: Any) -> None: ...

    def extend(self, values: Any) -> None: ...

    def values(self) -> Any: ...

    def clear(self) -> None: ...


class ItemColumn:
    """A variable field's values of the shard being gathered, as a list."""

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


def variable_arrow(kind: pa.DataType, offsets: np.ndarray, data: Any, count: int) -> pa.Array:
    """A variable-length Arrow array (binary/string family) from offsets and data."""
    return pa.Array.from_buffers(kind, count, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def offsets_of(lengths: Iterator[int] | Sequence[int], count: int) -> np.ndarray:
    """int64 offsets ``[0, l0, l0 + l1, ...]`` of ``count`` lengths."""
    offsets = np.zeros(count + 1, np.int64)
    np.cumsum(np.fromiter(lengths, np.int64, count), out=offsets[1:])
    return offsets
