"""In-memory data: a mapping of equal-length arrays/tensors/lists, or any iterable of dicts."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from loadwise.errors import SourceError
from loadwise.format.fields.array import as_array, stored_dtype
from loadwise.sources.base import Record


class ArraySource:
    """``{"image": array[N, ...], "label": array[N]}``: sample ``i`` is every field's row ``i``."""

    kind = "arrays"

    def __init__(
        self,
        columns: Mapping[str, Any],
        categories: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        if not columns:
            raise SourceError("the array source has no fields: pass e.g. {'image': images}.")
        self._columns = {name: _as_column(name, value) for name, value in columns.items()}
        lengths = {name: len(col) for name, col in self._columns.items()}
        if len(set(lengths.values())) != 1:
            raise SourceError(f"array source fields differ in length: {lengths}; align them.")
        self._length = next(iter(lengths.values()))
        self.categories = {k: tuple(v) for k, v in (categories or {}).items()}

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[tuple[str, Record]]:
        return self.records(0, self._length)

    def records(self, start: int, stop: int) -> Iterator[tuple[str, Record]]:
        for i in range(start, min(stop, self._length)):
            yield str(i), {name: col[i] for name, col in self._columns.items()}

    def describe(self) -> dict[str, Any]:
        """Kind, length and a fingerprint over every byte of every value (so ``resume=True``
        never keeps shards of other data; media by their fields, files by path, size and
        modification time); no fingerprint where a value cannot be hashed (an arbitrary
        object), and then ``pack`` refuses to resume."""
        described: dict[str, Any] = {"kind": self.kind, "items": self._length}
        digest = xxhash.xxh3_64()
        for name, col in self._columns.items():
            _feed(digest, name)
            if not _feed(digest, col):
                return described
        return described | {"fingerprint": digest.hexdigest()}


class IterableSource:
    """Any iterable of dicts (a generator, a list); item names are their positions."""

    kind = "iterable"

    def __init__(
        self,
        records: Iterable[Mapping[str, Any]],
        length: int | None = None,
        categories: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._records = records
        self._length = length if length is not None else _length_of(records)
        self.categories = {k: tuple(v) for k, v in (categories or {}).items()}

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[tuple[str, Record]]:
        for i, record in enumerate(self._records):
            if not isinstance(record, Mapping):
                raise SourceError(f"record {i} is a {type(record).__name__}; records are dicts.")
            yield str(i), {name: _plain(value, name, str(i)) for name, value in record.items()}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "items": self._length}


def _length_of(records: Iterable[Any]) -> int:
    try:
        return len(records)  # type: ignore[arg-type]
    except TypeError:
        raise SourceError(
            "this iterable has no length: pass `length=` so progress and shard sizes are known."
        ) from None


def _feed(digest: Any, value: Any) -> bool:
    """Add ``value`` to ``digest``, typed and length-prefixed, so that different values
    never feed the same bytes; False if its content cannot be hashed."""
    value = _plain(value)
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray) and value.dtype != object:
        head = f"A{value.dtype.str}{value.shape}"
        digest.update(f"{len(head)}:{head}".encode())
        digest.update(np.ascontiguousarray(value).view(np.uint8).reshape(-1).data)
        return True
    if isinstance(value, np.ndarray | list | tuple):
        digest.update(f"L{len(value)}:".encode())
        return all(_feed(digest, v) for v in value)
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogatepass")
        digest.update(f"S{len(value)}:".encode())
    elif isinstance(value, bytes | bytearray | memoryview):
        digest.update(f"B{len(value)}:".encode())
    elif value is None or isinstance(value, bool | int | float | complex):
        value = f"{type(value).__name__}:{value!r}".encode()
        digest.update(f"N{len(value)}:".encode())
    elif isinstance(value, Path):
        return _feed_file(digest, value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _feed_record(digest, value)
    else:
        return False
    digest.update(value)
    return True


def _feed_record(digest: Any, value: Any) -> bool:
    """A media value (``ImageBytes``, ``AudioArray``, ``ImageURL``, ...): its type and
    every field, so its bytes count like any other value."""
    head = f"{type(value).__module__}.{type(value).__qualname__}"
    digest.update(f"D{len(head)}:{head}".encode())
    return all(_feed(digest, getattr(value, f.name)) for f in dataclasses.fields(value))


def _feed_file(digest: Any, path: Path) -> bool:
    """A file by path, size and modification time, as a folder source fingerprints its files
    (reading every byte of every file would cost a second pass over the data)."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    line = f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
    digest.update(f"P{len(line)}:".encode() + line)
    return True


def _as_column(name: str, value: Any) -> Any:
    value = _plain(value, name)
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            raise SourceError(f"field `{name}` is a scalar; columns need one row per sample.")
        if value.dtype.kind not in "OUS":
            stored_dtype(value.dtype, name)  # refused now, not after reading everything
        if 0 in value.shape[1:]:
            raise SourceError(
                f"field `{name}` has shape {value.shape}: samples with no values cannot be "
                f"stored as rows. Drop the field, or pass its values as a list of 1-D arrays "
                f"under a RaggedField."
            )
        return value
    if isinstance(value, list | tuple):
        return list(value)
    raise SourceError(f"field `{name}` is a {type(value).__name__}; pass an array, tensor or list.")


def _plain(value: Any, name: str = "", item: str = "") -> Any:
    """Torch tensors become numpy arrays, so the writer sees one kind of array."""
    if type(value).__module__.startswith("torch"):
        return as_array(value, name, item)
    return value
