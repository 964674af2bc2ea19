"""Files of named arrays (HDF5, Zarr) as sources: arrays of equal first dimension mapped to
fields, read in chunk-sized sorted runs.

A format module (``hdf5.py``, ``zarr.py``) gives an ``ArrayFile``: the arrays it holds
(``listing``), contiguous rows (``read_slice``) and sorted rows (``read_rows``), with its
handle opened per process. ``select_arrays`` maps fields to arrays and refuses what cannot be
a field (missing names, unequal lengths, strings, objects, compound records), naming what
is there. ``ArrayFileSource`` yields one record per row for ``pack``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import xxhash

from loadwise.errors import SourceError
from loadwise.sources.base import Record

log = logging.getLogger("loadwise")

#: What a field may hold: bool, int, uint, float.
NUMERIC_KINDS = "biuf"
#: Rows read at once when the file says nothing better: about this many bytes.
RUN_BYTES = 4 << 20

Fields = Mapping[str, str] | Sequence[str] | None


@dataclass(frozen=True)
class ArrayInfo:
    """One array of a file: its path inside the file, shape, dtype, rows per chunk, and
    why it cannot be a field (None if it can)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    chunk_rows: int
    problem: str | None = None

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def describe(self) -> str:
        return f"{self.name} {self.shape} {self.dtype}"


class ArrayFile(Protocol):
    """A file of named arrays, opened per process (``sources/handles.py``)."""

    path: Path

    def listing(self) -> dict[str, ArrayInfo]: ...

    def read_slice(self, name: str, start: int, stop: int) -> np.ndarray: ...

    def read_rows(self, name: str, rows: np.ndarray) -> np.ndarray: ...

    def stamp(self) -> str:
        """Changes when the content does: sizes and modification times of its files."""
        ...

    def close(self) -> None: ...


def numeric_problem(dtype: np.dtype) -> str | None:
    """Why an array of ``dtype`` cannot be a field, or None."""
    if dtype.names:
        return f"a compound record dtype ({', '.join(dtype.names)})"
    if dtype.kind == "O":
        return "objects or variable-length values (dtype object)"
    if dtype.kind in "SUT":
        return f"strings (dtype {dtype})"
    if dtype.kind not in NUMERIC_KINDS:
        return f"dtype {dtype}, which is not a number"
    return None


def select_arrays(
    listing: Mapping[str, ArrayInfo], fields: Fields, where: Path
) -> dict[str, ArrayInfo]:
    """Field name -> array: ``fields`` as ``{"image": "images"}`` or a list of array names
    (the field is the last part of the name); by default every numeric array, which must
    then share one length. Errors list the arrays the file holds."""
    if fields is None:
        chosen = _of_the_file_length(listing, where)
    else:
        pairs = fields.items() if isinstance(fields, Mapping) else ((_leaf(n), n) for n in fields)
        chosen = {field: _named(listing, str(name), where) for field, name in pairs}
    if not chosen:
        raise SourceError(f"`{where}` holds no numeric array to read: {_holds(listing)}")
    for info in chosen.values():
        if info.problem or not info.shape:
            what = info.problem or "a scalar (no rows)"
            raise SourceError(
                f"array `{info.name}` of `{where}` holds {what}; a field needs numbers with one "
                f"row per sample. Leave it out of `fields` (the file holds: {_holds(listing)})."
            )
    lengths = {info.name: info.shape[0] for info in chosen.values()}
    if len(set(lengths.values())) > 1:
        raise SourceError(
            f"the arrays of `{where}` differ in length ({lengths}); samples are rows of arrays "
            f"of one length: pass `fields=` naming those that belong together."
        )
    return chosen


def _of_the_file_length(listing: Mapping[str, ArrayInfo], where: Path) -> dict[str, ArrayInfo]:
    """Every numeric array of the file's length: the first dimension most arrays share."""
    numeric = [i for i in listing.values() if not i.problem and i.shape]
    counts = Counter(i.shape[0] for i in numeric).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        raise SourceError(
            f"the arrays of `{where}` have no common length ({_holds(listing)}): pass "
            f"`fields=` naming those that belong together, e.g. {{'image': 'images'}}."
        )
    chosen = {_leaf(i.name): i for i in numeric if i.shape[0] == counts[0][0]} if counts else {}
    left = [i.describe() for i in listing.values() if _leaf(i.name) not in chosen]
    if left:
        log.info("loadwise: `%s`: leaving out arrays of other lengths or kinds: %s", where, left)
    return chosen


def _named(listing: Mapping[str, ArrayInfo], name: str, where: Path) -> ArrayInfo:
    info = listing.get(name.strip("/")) or listing.get(name)
    if info is None:
        raise SourceError(f"`{where}` has no array `{name}`; it holds: {_holds(listing)}.")
    return info


def _holds(listing: Mapping[str, ArrayInfo]) -> str:
    return ", ".join(i.describe() for i in listing.values()) or "no arrays at all"


def _leaf(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def run_rows(columns: Mapping[str, ArrayInfo]) -> int:
    """Rows per read: a whole number of the arrays' chunks, about ``RUN_BYTES`` at least."""
    chunk = max(info.chunk_rows for info in columns.values())
    row_bytes = max(1, sum(info.row_bytes for info in columns.values()))
    return chunk * max(1, RUN_BYTES // (chunk * row_bytes))


def runs_of(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ``rows`` as runs of consecutive indices: ``(starts, stops)``."""
    if not len(rows):
        return rows[:0], rows[:0]
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = rows[np.concatenate([[0], breaks])]
    stops = rows[np.concatenate([breaks - 1, [len(rows) - 1]])] + 1
    return starts, stops


class ArrayFileSource:
    """Row ``i`` of every selected array is sample ``i``; rows are read in chunk-aligned
    runs, each array once per run."""

    kind: ClassVar[str] = ""

    def __init__(
        self,
        file: ArrayFile,
        fields: Fields = None,
        categories: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.file = file
        try:
            self.columns = select_arrays(file.listing(), fields, file.path)
        finally:
            file.close()  # opened again where records are read (a forked worker, say)
        self._length = next(iter(self.columns.values())).shape[0]
        self._step = run_rows(self.columns)
        self.categories = {k: tuple(v) for k, v in (categories or {}).items()}

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[tuple[str, Record]]:
        return self.records(0, self._length)

    def records(self, start: int, stop: int) -> Iterator[tuple[str, Record]]:
        stop = min(stop, self._length)
        first = start - start % self._step
        for low in range(first, stop, self._step):
            a, b = max(low, start), min(low + self._step, stop)
            if a >= b:
                continue
            block = {f: self.file.read_slice(i.name, a, b) for f, i in self.columns.items()}
            for j in range(b - a):
                yield str(a + j), {f: rows[j] for f, rows in block.items()}

    def describe(self) -> dict[str, Any]:
        """Fingerprint: the file's sizes and modification times, and the fields chosen."""
        fields = {f: i.describe() for f, i in self.columns.items()}
        key = repr((sorted(fields.items()), self.file.stamp())).encode()
        return {
            "kind": self.kind,
            "root": str(self.file.path),
            "items": self._length,
            "fields": fields,
            "fingerprint": xxhash.xxh3_64_hexdigest(key),
        }

    def close(self) -> None:
        self.file.close()
