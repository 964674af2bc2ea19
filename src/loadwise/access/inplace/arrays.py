"""HDF5 files and Zarr stores read in place: fields are arrays of one length, a batch is one
sorted read per array (``sources/hdf5.py``: one hyperslab union; ``sources/zarr.py``: one
orthogonal selection), streaming's unit a chunk-aligned run of about 4 MB."""

from __future__ import annotations

from typing import Any

import numpy as np

from loadwise.sources.arrayfile import ArrayFile, Fields, run_rows, select_arrays


class ArrayReader:
    """The selected arrays of an ``ArrayFile`` (``HDF5File``, ``ZarrFile``), by row."""

    def __init__(self, file: ArrayFile, fields: Fields = None) -> None:
        self.file, self.path = file, file.path
        self.columns = select_arrays(file.listing(), fields, file.path)
        self._length = next(iter(self.columns.values())).shape[0]
        self._run = run_rows(self.columns)

    def __len__(self) -> int:
        return self._length

    def read(self, rows: np.ndarray) -> dict[str, Any]:
        return {f: self.file.read_rows(info.name, rows) for f, info in self.columns.items()}

    def chunk_sizes(self) -> list[int]:
        full, rest = divmod(self._length, self._run)
        return [self._run] * full + ([rest] if rest else [])

    def check(self) -> None:
        self.file.check()  # type: ignore[attr-defined]  # both file kinds have it

    def close(self) -> None:
        self.file.close()
