"""Zarr stores (zarr-python 3, the ``zarr`` extra): arrays of equal length as fields, read in
place or packed.

zarr-python 3 does its I/O on an asyncio loop running in a background thread. A forked child
inherits that loop's objects but not its thread, and a lock held by any parent thread at the
fork stays held forever in the child: the first read there waits for ever. zarr 3.1 resets
its loop after a fork; ``_reset_after_fork`` also drops the lock that guards creating a new
loop, and runs in every child forked once this module was imported. Stores are opened per
process (``handles.PerProcess``) and never pickled.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from loadwise.errors import IntegrityError, SourceError
from loadwise.sources.arrayfile import ArrayFileSource, ArrayInfo, Fields, numeric_problem
from loadwise.sources.handles import FileSignature, OpenedFile, PerProcess, import_extra

ZARR_METADATA = ("zarr.json", ".zgroup", ".zarray")


def zarr_module() -> Any:
    return import_extra("zarr", "zarr")


def is_zarr(path: Path) -> bool:
    """A Zarr store: a folder holding ``zarr.json`` (v3) or ``.zgroup``/``.zarray`` (v2)."""
    return path.is_dir() and any((path / name).is_file() for name in ZARR_METADATA)


def _reset_after_fork() -> None:
    """In a forked child: forget the parent's zarr I/O loop, thread, executor and lock."""
    sync = sys.modules.get("zarr.core.sync")
    if sync is None:
        return
    state = vars(sync)
    state["loop"][0] = None
    state["iothread"][0] = None
    state["_executor"] = None
    state["_lock"] = None  # a lock a parent thread held at the fork is never released here


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class ZarrFile(OpenedFile):
    """A Zarr group's (or a single array's) numeric arrays, opened per process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        zarr_module()
        if not is_zarr(self.path):
            raise SourceError(
                f"`{self.path}` is not a Zarr store: a Zarr store is a folder holding "
                f"`zarr.json` (or `.zgroup`/`.zarray` for Zarr v2)."
            )
        metadata = next(self.path / n for n in ZARR_METADATA if (self.path / n).is_file())
        self.signature = FileSignature.of(metadata)
        self._handle: PerProcess[dict[str, Any]] = PerProcess(self._open, _forget)
        try:
            self._listing = _list(self._handle.get())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SourceError(f"`{self.path}` is not a readable Zarr store: {exc}") from exc
        finally:
            self._handle.close()

    def listing(self) -> dict[str, ArrayInfo]:
        return dict(self._listing)

    def read_slice(self, name: str, start: int, stop: int) -> np.ndarray:
        return self._read(name, lambda array: array[start:stop])

    def read_rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Sorted, unique ``rows``: one orthogonal selection (each chunk touched read once)."""
        if not len(rows):
            info = self._listing[name]
            return np.empty((0, *info.shape[1:]), info.dtype)
        return self._read(name, lambda array: array.get_orthogonal_selection((rows,)))

    def stamp(self) -> str:
        """Sizes and modification times of every file of the store."""
        parts = []
        for folder, _, files in sorted(os.walk(self.path)):
            for name in sorted(files):
                stat = os.stat(os.path.join(folder, name))
                parts.append(f"{folder}/{name}:{stat.st_size}:{stat.st_mtime_ns}")
        return xxhash.xxh3_64_hexdigest("\n".join(parts).encode())

    def _open(self) -> dict[str, Any]:
        self.signature.check()
        root = zarr_module().open(self.path, mode="r")
        arrays = _arrays(root, zarr_module())
        return {name: array for name, array in arrays}

    def _read(self, name: str, read: Any) -> np.ndarray:
        arrays = self._handle.get()
        try:
            return np.asarray(read(arrays[name]))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            self.signature.check()
            raise IntegrityError(
                f"cannot read array `{name}` of `{self.path}`: {exc}. A chunk file may be "
                f"truncated or damaged."
            ) from exc


def _forget(arrays: dict[str, Any]) -> None:
    """Zarr arrays hold no open file between reads: dropping them is closing them."""
    arrays.clear()


def _arrays(root: Any, zarr: Any) -> list[tuple[str, Any]]:
    if isinstance(root, zarr.Array):
        return [(Path(str(root.store_path.path) or "array").name, root)]
    return [(n, a) for n, a in root.members(max_depth=None) if isinstance(a, zarr.Array)]


def _list(arrays: Mapping[str, Any]) -> dict[str, ArrayInfo]:
    found = {}
    for name, array in sorted(arrays.items()):
        dtype = np.dtype(array.dtype)
        shape = tuple(int(d) for d in array.shape)
        rows = int(array.chunks[0]) if shape else 1
        found[name] = ArrayInfo(name, shape, str(dtype), rows, numeric_problem(dtype))
    return found


class ZarrSource(ArrayFileSource):
    """Rows of a Zarr group's arrays as samples: ``ZarrSource("data.zarr", {"image":
    "images", "label": "labels"})``; by default every numeric array of the store's length."""

    kind = "zarr"

    def __init__(
        self,
        path: str | Path,
        fields: Fields = None,
        categories: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(ZarrFile(path), fields, categories)


__all__ = ["ZarrFile", "ZarrSource", "is_zarr"]
