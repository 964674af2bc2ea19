"""The ragged kind: a variable-length 1-D array of one numeric dtype per sample (token ids,
audio clips).

Stored as Arrow ``large_list<dtype>``: int64 ``offsets`` (counted in elements; 32-bit list
offsets overflow on large corpora) and the values end to end in ``data``. A batch is read
with no Python step per sample (``gather.spans``): a padded ``(N, longest)`` tensor plus
``<name>_lengths``, or, with ``ReadOptions(ragged="list")``, a list of 1-D tensors.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from loadwise.errors import SourceError
from loadwise.format.fields.array import as_array, declared_dtype, unstorable
from loadwise.format.fields.base import (
    BufferReader,
    FieldSpec,
    ReadOptions,
    Segment,
    offsets_of,
)
from loadwise.gather.spans import padded_take

RAGGED_OUTPUTS = ("padded", "list")
LENGTHS_SUFFIX = "_lengths"


@dataclass(frozen=True)
class RaggedField(FieldSpec):
    """1-D arrays of ``dtype`` and any length; never inferred: name it in ``pack``'s schema
    (or a source declares it)."""

    dtype: str = "float32"

    kind: ClassVar[str] = "ragged"

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", declared_dtype(self.dtype, self.name))

    @property
    def element_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def lengths_name(self) -> str:
        """The batch entry holding each sample's length (padded output)."""
        return self.name + LENGTHS_SUFFIX

    def _options(self) -> dict[str, Any]:
        return {"dtype": self.dtype}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RaggedField:
        if str(raw["dtype"]).startswith(">"):
            raise ValueError(f"ragged field {raw['name']!r} has big-endian dtype {raw['dtype']!r}")
        return cls(str(raw["name"]), str(raw["dtype"]))

    def check(self, value: Any, item: str, first: str) -> np.ndarray:
        """A 1-D array of this dtype; other numeric dtypes are cast when no value changes."""
        array = as_array(value, self.name, item)
        if array.ndim != 1 or unstorable(array.dtype) is not None:
            raise SourceError(
                f"sample `{item}` field `{self.name}` has dtype {array.dtype}, shape "
                f"{array.shape}; this ragged field holds 1-D arrays of {self.dtype}."
            )
        if array.dtype == self.element_dtype:
            return array
        cast = array.astype(self.element_dtype)
        if not np.array_equal(cast, array):
            raise SourceError(
                f"sample `{item}` field `{self.name}` holds {array.dtype} values that change "
                f"when stored as {self.dtype}; convert them first or declare the field with "
                f"dtype {array.dtype}."
            )
        return cast

    def stored_bytes(self, value: np.ndarray) -> int:
        return int(value.nbytes)

    def to_arrow(self, values: list[np.ndarray]) -> pa.Array:
        count = len(values)
        offsets = offsets_of(map(len, values), count)
        flat = np.concatenate(values) if values else np.empty(0, self.element_dtype)
        if flat.dtype == np.bool_:  # as array fields: one byte each, not Arrow's bits
            flat = flat.view(np.uint8)
        items = pa.Array.from_buffers(
            pa.from_numpy_dtype(flat.dtype), len(flat), [None, pa.py_buffer(flat)]
        )
        starts = pa.Array.from_buffers(pa.int64(), count + 1, [None, pa.py_buffer(offsets)])
        return pa.LargeListArray.from_arrays(starts, items)

    def arrow_buffers(self, array: pa.Array) -> dict[str, pa.Buffer | None]:
        buffers = array.buffers()  # list validity, offsets, item validity, item values
        return {"offsets": buffers[1], "data": buffers[3]}

    def read_batch(
        self, reader: BufferReader, indices: np.ndarray, options: ReadOptions
    ) -> dict[str, Any]:
        import torch

        padded, lengths = _padded(reader.segments(self, indices), len(indices), self)
        if options.ragged == "list":
            kept = torch.from_numpy(padded[np.arange(padded.shape[1]) < lengths[:, None]])
            return {self.name: list(torch.split(kept, lengths.tolist()))}
        return {self.name: torch.from_numpy(padded), self.lengths_name: torch.from_numpy(lengths)}


def _padded(
    segments: Iterator[Segment], count: int, spec: RaggedField
) -> tuple[np.ndarray, np.ndarray]:
    """The batch as one padded array and its lengths, from segments in any order."""
    parts = [(s, padded_take(s.values, s.starts, s.lengths)) for s in segments]
    if len(parts) == 1 and parts[0][0].rows is None:
        return parts[0][1], parts[0][0].lengths
    width = max((p.shape[1] for _, p in parts), default=0)
    out = np.zeros((count, width), spec.element_dtype)
    lengths = np.zeros(count, np.int64)
    for segment, part in parts:
        rows = segment.rows if segment.rows is not None else np.arange(count)
        out[rows, : part.shape[1]] = part
        lengths[rows] = segment.lengths
    return out, lengths
