"""LMDB databases read in place: a sample per key (in key order), its value decoded as
``values`` says (``sources/lmdb.py``); a batch is one read transaction over sorted keys.

Values of one shape and dtype (``.npy`` arrays, images of one size) come as one tensor,
others as a list (of tensors, ``bytes`` or ``str``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from loadwise.errors import ConfigError
from loadwise.sources.lmdb import LMDBFile, decode_value, value_kind

#: Keys per streaming chunk.
CHUNK_KEYS = 256


class LMDBReader:
    """``{field: value, "key": str}`` per key of an LMDB database."""

    def __init__(
        self,
        path: str | Path,
        values: str = "auto",
        *,
        field: str = "value",
        fields: Sequence[str] | None = None,
        db: str | None = None,
    ) -> None:
        self.file = LMDBFile(path, db)
        self.path = self.file.path
        self.values, self.field = value_kind(self.file, values), field
        known = (field, "key")
        self.fields = tuple(known if fields is None else fields)
        unknown = sorted(set(self.fields) - set(known))
        if unknown:
            raise ConfigError(f"`{self.path}` has no field(s) {unknown}; its fields: {known}.")
        self._empty = self._first_as_empty()

    def __len__(self) -> int:
        return len(self.file)

    def read(self, rows: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.field in self.fields:
            names = [self.file.name(i) for i in rows.tolist()]
            datas = self.file.values(rows)
            decoded = [
                decode_value(d, self.values, k, self.path)
                for d, k in zip(datas, names, strict=True)
            ]
            out[self.field] = _stacked(decoded, self.values) if len(rows) else self._empty
        if "key" in self.fields:
            out["key"] = [self.file.name(i) for i in rows.tolist()]
        return out

    def _first_as_empty(self) -> np.ndarray | list[Any]:
        """An empty batch's value: 0 rows shaped like the first value, for arrays."""
        if self.values not in ("npy", "image") or not len(self):
            return []
        first = np.zeros(1, np.int64)
        value = decode_value(self.file.values(first)[0], self.values, self.file.name(0), self.path)
        self.file.close()
        return np.empty((0, *value.shape), value.dtype)

    def chunk_sizes(self) -> list[int]:
        full, rest = divmod(len(self), CHUNK_KEYS)
        return [CHUNK_KEYS] * full + ([rest] if rest else [])

    def check(self) -> None:
        self.file.check()

    def close(self) -> None:
        self.file.close()


def _stacked(values: list[Any], kind: str) -> np.ndarray | list[Any]:
    """Arrays of one shape and dtype as one array; anything else as the list."""
    if kind not in ("npy", "image") or not values:
        return values
    first = values[0]
    if all(v.shape == first.shape and v.dtype == first.dtype for v in values):
        return np.stack(values)
    return values
