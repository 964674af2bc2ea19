"""HDF5 files (h5py, the ``hdf5`` extra): arrays of equal length as fields, read in place or packed.

``HDF5File`` is the file as ``arrayfile.py`` needs it: opened lazily in each process (never
shared across ``fork``, never pickled), a batch of rows read as one selection per array
(runs of consecutive rows merged into one hyperslab union, a single ``H5Dread``). A dataset
stored contiguously without filters in native byte order (h5py's default layout) lies in
the file exactly as numpy holds it: its runs are read with one ``pread`` each at the data's
offset, skipping HDF5's per-call selection work (5-10x fewer microseconds per batch here).

The chunk cache (per dataset, per process) is sized from the data: uncompressed chunks get
none, so a row is read straight from the file rather than its whole chunk (HDF5 loads any
chunk that fits in the cache entirely: 64x the bytes for one row of a 64-row chunk);
compressed chunks, which must be decoded whole, get room for ``CACHED_CHUNKS`` of the
largest, within ``CACHE_LIMIT``, so a streaming window decodes each chunk about once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loadwise.errors import IntegrityError, SourceError
from loadwise.sources.arrayfile import ArrayFileSource, ArrayInfo, Fields, numeric_problem, runs_of
from loadwise.sources.handles import FileSignature, OpenedFile, PerProcess, import_extra

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
CACHED_CHUNKS = 16
CACHE_LIMIT = 32 << 20


def h5py_module() -> Any:
    return import_extra("h5py", "hdf5")


def is_hdf5(path: Path) -> bool:
    """An HDF5 file by its signature (at 0, or after a user block of 512, 1024, ... bytes)."""
    try:
        with open(path, "rb") as handle:
            for offset in (0, 512, 1024, 2048, 4096):
                handle.seek(offset)
                if handle.read(8) == HDF5_MAGIC:
                    return True
    except OSError:
        return False
    return False


@dataclass
class _Opened:
    """This process's open file, a plain descriptor of it (for direct reads), and the
    datasets looked up in it so far."""

    file: Any
    fd: int
    datasets: dict[str, Any] = field(default_factory=dict)


class HDF5File(OpenedFile):
    """An HDF5 file's numeric datasets, opened per process with a sized chunk cache."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        h5py = h5py_module()
        if not self.path.is_file():
            raise SourceError(f"HDF5 file `{self.path}` does not exist.")
        self.signature = FileSignature.of(self.path)
        try:
            with h5py.File(self.path, "r") as opened:
                self._listing, filtered, self._direct = _list(opened, h5py)
        except OSError as exc:
            raise SourceError(f"`{self.path}` is not a readable HDF5 file: {exc}") from exc
        self.cache_bytes = min(CACHE_LIMIT, CACHED_CHUNKS * filtered)
        self._handle: PerProcess[_Opened] = PerProcess(self._open, _close)

    def listing(self) -> dict[str, ArrayInfo]:
        return dict(self._listing)

    def read_slice(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of dataset ``name``, one read."""
        info = self._listing[name]
        out = np.empty((stop - start, *info.shape[1:]), info.dtype)
        if stop <= start:
            return out
        if name in self._direct:
            self._pread(name, out, np.array([start]), np.array([stop]))
        else:
            self._read(name, out, lambda ds: ds.read_direct(out, np.s_[start:stop]))
        return out

    def read_rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Sorted, unique ``rows`` of dataset ``name``: one read of the union of their runs."""
        info = self._listing[name]
        out = np.empty((len(rows), *info.shape[1:]), info.dtype)
        if not len(rows):
            return out
        if name in self._direct:
            self._pread(name, out, *runs_of(rows))
        else:
            self._read(name, out, lambda ds: _read_runs(ds, rows, out))
        return out

    def stamp(self) -> str:
        return f"{self.signature.size}:{self.signature.mtime_ns}"

    def _open(self) -> _Opened:
        self.signature.check()
        h5py = h5py_module()
        slots = max(521, 100 * CACHED_CHUNKS) | 1
        opened = h5py.File(self.path, "r", rdcc_nbytes=self.cache_bytes, rdcc_nslots=slots)
        return _Opened(opened, os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))

    def _pread(self, name: str, out: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> None:
        """Runs of rows of a contiguous, unfiltered dataset read straight from the file at
        its data's offset, one ``pread`` per run into ``out`` (no HDF5 call per batch)."""
        try:
            fd = self._handle.get().fd
        except OSError as exc:
            raise self._damaged(name, exc) from exc
        size = self._listing[name].row_bytes
        into = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
        at, base = 0, self._direct[name]
        for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
            want = (stop - start) * size
            if os.preadv(fd, [into[at : at + want]], base + start * size) != want:
                raise self._damaged(name, OSError(f"rows {start}-{stop} lie past the file's end"))
            at += want

    def _damaged(self, name: str, exc: BaseException) -> IntegrityError:
        self.signature.check()  # a replaced or truncated file: say so
        return IntegrityError(
            f"cannot read dataset `{name}` of `{self.path}`: {exc}. The file may be "
            f"damaged; check it with `h5dump -H`."
        )

    def _read(self, name: str, out: np.ndarray, read: Any) -> None:
        try:
            opened = self._handle.get()
            dataset = opened.datasets.get(name)
            if dataset is None:
                dataset = opened.datasets[name] = opened.file[name]
            read(dataset)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise self._damaged(name, exc) from exc


def _close(opened: _Opened) -> None:
    opened.datasets.clear()
    os.close(opened.fd)
    opened.file.close()


def _read_runs(dataset: Any, rows: np.ndarray, out: np.ndarray) -> None:
    """One ``H5Dread`` of the union of hyperslabs, one per run of consecutive rows."""
    starts, stops = runs_of(rows)
    if len(starts) == 1:
        dataset.read_direct(out, np.s_[int(starts[0]) : int(stops[0])])
        return
    h5s = h5py_module().h5s
    space = dataset.id.get_space()
    space.select_none()
    rest = tuple(dataset.shape[1:])
    zeros = (0,) * len(rest)
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        space.select_hyperslab((start, *zeros), (stop - start, *rest), op=h5s.SELECT_OR)
    dataset.id.read(h5s.create_simple(out.shape), space, out)


def _list(opened: Any, h5py: Any) -> tuple[dict[str, ArrayInfo], int, dict[str, int]]:
    """Every dataset of the file, the bytes of its largest compressed chunk, and where the
    data of each contiguous, unfiltered, native-order dataset starts in the file."""
    found: dict[str, ArrayInfo] = {}
    filtered = [0]
    direct: dict[str, int] = {}

    def visit(name: str, obj: Any) -> None:
        if not isinstance(obj, h5py.Dataset):
            return
        shape = tuple(int(d) for d in obj.shape or ())
        problem = _problem(obj.dtype, h5py)
        rows = int(obj.chunks[0]) if obj.chunks and shape else 1
        info = ArrayInfo(name, shape, str(obj.dtype), rows, problem)
        if obj.chunks and obj.id.get_create_plist().get_nfilters() and not problem:
            filtered[0] = max(filtered[0], rows * info.row_bytes)
        found[name] = info
        if not problem and shape and (offset := _data_offset(obj, h5py)) is not None:
            direct[name] = offset

    opened.visititems(visit)
    return found, filtered[0], direct


def _data_offset(dataset: Any, h5py: Any) -> int | None:
    """Where a dataset's raw rows start in the file, if they lie there as numpy would hold
    them: contiguous, unfiltered, not external, written, in native byte order."""
    plist = dataset.id.get_create_plist()
    if plist.get_layout() != h5py.h5d.CONTIGUOUS or plist.get_nfilters():
        return None
    if plist.get_external_count() or not dataset.dtype.isnative:
        return None
    offset = dataset.id.get_offset()
    return None if offset is None else int(offset)


def _problem(dtype: np.dtype, h5py: Any) -> str | None:
    if h5py.check_string_dtype(dtype) is not None and dtype.kind == "O":
        return "variable-length strings"
    if h5py.check_vlen_dtype(dtype) is not None:
        return "variable-length sequences"
    return numeric_problem(dtype)


class HDF5Source(ArrayFileSource):
    """Rows of HDF5 datasets as samples: ``HDF5Source("data.h5", {"image": "images",
    "label": "labels"})``; by default every numeric dataset (they must share one length)."""

    kind = "hdf5"

    def __init__(
        self,
        path: str | Path,
        fields: Fields = None,
        categories: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(HDF5File(path), fields, categories)


__all__ = ["HDF5_SUFFIXES", "HDF5File", "HDF5Source", "is_hdf5"]
