"""Files read in place, without packing: ``open("data.h5" | "data.zarr" | "data.lmdb", mode)``.

``inplace_format(path)`` tells whether a path is one of these; ``open_inplace`` opens it in
``lazy`` (map-style) or ``streaming`` (shuffled chunks, windowed) mode. Eager and cached
modes need a packed dataset: ``loadwise.pack(source, dest)`` first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadwise.access.inplace.arrays import ArrayReader
from loadwise.access.inplace.base import (
    DEFAULT_WINDOW,
    InPlaceBase,
    InPlaceDataset,
    InPlaceStream,
    Reader,
)
from loadwise.access.inplace.lmdb import LMDBReader
from loadwise.errors import ModeError
from loadwise.sources.arrayfile import Fields

INPLACE_MODES = ("auto", "lazy", "streaming")


def _hdf5(path: Path, fields: Fields) -> Reader:
    from loadwise.sources.hdf5 import HDF5File

    return ArrayReader(HDF5File(path), fields)


def _zarr(path: Path, fields: Fields) -> Reader:
    from loadwise.sources.zarr import ZarrFile

    return ArrayReader(ZarrFile(path), fields)


def _lmdb(path: Path, fields: Fields) -> Reader:
    return LMDBReader(path, fields=None if fields is None else list(fields))


#: Each format read in place: how to recognise a path, and how to make its reader.
FORMATS: dict[str, tuple[Callable[[Path], bool], Callable[[Path, Fields], Reader]]] = {}


def _register() -> None:
    from loadwise.sources.hdf5 import HDF5_SUFFIXES, is_hdf5
    from loadwise.sources.lmdb import is_lmdb
    from loadwise.sources.zarr import is_zarr

    FORMATS["hdf5"] = (lambda p: p.suffix.lower() in HDF5_SUFFIXES or is_hdf5(p), _hdf5)
    FORMATS["zarr"] = (is_zarr, _zarr)
    FORMATS["lmdb"] = (is_lmdb, _lmdb)


_register()


def inplace_format(path: Any) -> str | None:
    """``hdf5``, ``zarr`` or ``lmdb`` if ``path`` is such a file (or folder), else None."""
    if not isinstance(path, str | Path):
        return None
    path = Path(path).expanduser()
    if not path.exists():
        return None
    return next((name for name, (knows, _) in FORMATS.items() if knows(path)), None)


def open_inplace(
    path: str | Path, mode: str = "lazy", *, fields: Fields = None, window: int = DEFAULT_WINDOW
) -> InPlaceDataset | InPlaceStream:
    """``path`` read in place in ``mode`` (``lazy``; ``auto`` is ``lazy``; ``streaming``)."""
    path = Path(path).expanduser().resolve()
    kind = inplace_format(path)
    if kind is None:
        raise ModeError(f"`{path}` is not an HDF5 file, Zarr store or LMDB database.")
    if mode not in INPLACE_MODES:
        raise ModeError(
            f"`{path}` ({kind}) is read in place in mode lazy or streaming, not {mode!r}. For "
            f"eager or cached, pack it first: loadwise.pack(loadwise.sources.{_SOURCES[kind]}"
            f"({str(path)!r}), dest), then loadwise.open(dest, {mode!r})."
        )
    reader = FORMATS[kind][1](path, fields)
    if mode == "streaming":
        return InPlaceStream(reader, window=window)
    return InPlaceDataset(reader)


_SOURCES = {"hdf5": "HDF5Source", "zarr": "ZarrSource", "lmdb": "LMDBSource"}

__all__ = [
    "FORMATS",
    "INPLACE_MODES",
    "ArrayReader",
    "InPlaceBase",
    "InPlaceDataset",
    "InPlaceStream",
    "LMDBReader",
    "inplace_format",
    "open_inplace",
]
