"""The dataset interface of the packed modes, over files read in place (HDF5, Zarr, LMDB).

A ``Reader`` (``arrays.py``, ``lmdb.py``) answers one question: the values of sorted, unique
rows, one read per array. The dataset sorts and de-duplicates a batch's indices, asks once,
and puts the rows back in the asked order. Handles are opened lazily in each process and
never pickled (``sources/handles.py``); every batch first checks that the file was not
replaced or truncated meanwhile (one ``stat``).

``lazy`` is a map-style dataset; ``streaming`` is also an ``IterableDataset`` whose order
shuffles the reader's chunks (runs of rows read together) and then samples within a window
of ``window`` chunks: a batch touches only the chunks of its window, so reads stay local
and the bytes read add up to the file's size once per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from loadwise import stages
from loadwise.errors import LoadwiseError, SampleIndexError
from loadwise.sampling.order import batches, block_order, partition
from loadwise.sampling.ranks import distributed_rank, worker_slot

Batch = dict[str, Any]
#: Chunks of rows the streaming order samples within at a time.
DEFAULT_WINDOW = 8
_CHUNK = 64


class Reader(Protocol):
    """Values of a file's samples, by sorted unique row."""

    path: Path

    def __len__(self) -> int: ...

    def read(self, rows: np.ndarray) -> dict[str, np.ndarray | list[Any]]:
        """Each field's values of ``rows`` (sorted, unique), row ``j`` for ``rows[j]``."""
        ...

    def chunk_sizes(self) -> list[int]:
        """Consecutive runs of rows that are read together (streaming's unit)."""
        ...

    def check(self) -> None:
        """``IntegrityError`` if the file was replaced or truncated while open."""
        ...

    def close(self) -> None: ...


class InPlaceBase:
    """Index checks, one read per batch, order restored, ``close``; pickles without handles."""

    mode: ClassVar[str]

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.root = reader.path
        self._closed = False

    def __len__(self) -> int:
        return len(self.reader)

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> Batch:
        """A whole batch as ``{field: tensor or list}`` plus ``index``: one read per array."""
        idx = self._checked(indices)
        with stages.span("gather"):
            self.reader.check()
            rows, inverse = np.unique(idx, return_inverse=True)
            values = self.reader.read(rows)
            same = len(rows) == len(idx) and bool((rows == idx).all())
            batch: Batch = {k: _in_order(v, None if same else inverse) for k, v in values.items()}
        batch["index"] = torch.from_numpy(idx)
        return batch

    def close(self) -> None:
        """Release the file; reading afterwards raises."""
        self._closed = True
        self.reader.close()

    def __enter__(self) -> InPlaceBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, samples={len(self)}, mode={self.mode})"

    def _checked(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        if self._closed:
            raise LoadwiseError(f"the dataset at `{self.root}` is closed; open it again to read.")
        idx = np.array(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        bad = (idx < -n) | (idx >= n)
        if bad.any():
            raise SampleIndexError(
                f"sample index {idx[bad][0]} is out of range for {n} samples in `{self.root}`."
            )
        idx[idx < 0] += n
        return idx


def _in_order(value: np.ndarray | list[Any], inverse: np.ndarray | None) -> Any:
    """Rows back in the asked order (repeats included) as a tensor, or a list of values."""
    if isinstance(value, np.ndarray):
        ordered = value if inverse is None else value[inverse]
        return torch.from_numpy(np.ascontiguousarray(ordered))
    items = value if inverse is None else [value[i] for i in inverse.tolist()]
    return [torch.from_numpy(v) if isinstance(v, np.ndarray) else v for v in items]


class InPlaceDataset(InPlaceBase, Dataset):
    """``lazy`` in place: any sample at any time, read from the file when asked."""

    mode = "lazy"

    def __getitem__(self, index: int) -> Batch:
        return _row(self.get_batch([index]), 0)

    def __getitems__(self, indices: Sequence[int]) -> list[Batch]:
        """Samples for a plain ``DataLoader``: read in one call, then split into rows."""
        batch = self.get_batch(indices)
        return [_row(batch, i) for i in range(len(indices))]


class InPlaceStream(InPlaceBase, IterableDataset):
    """``streaming`` in place: chunks in a shuffled order, samples shuffled within windows of
    ``window`` chunks; ``set_epoch`` reshuffles. ``loadwise.loader`` drives it by ``order``."""

    mode = "streaming"

    def __init__(
        self, reader: Reader, *, shuffle: bool = True, seed: int = 0, window: int = DEFAULT_WINDOW
    ) -> None:
        super().__init__(reader)
        self.shuffle, self.seed, self.window, self.epoch = shuffle, seed, window, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self, epoch: int, seed: int | None = None, shuffle: bool | None = None) -> np.ndarray:
        """This epoch's global sample order (before splitting across ranks and workers)."""
        seed = self.seed if seed is None else seed
        shuffle = self.shuffle if shuffle is None else shuffle
        return block_order(self.reader.chunk_sizes(), seed, epoch, self.window, shuffle)

    def __iter__(self) -> Iterator[Batch]:
        rank, world = distributed_rank()
        worker, workers = worker_slot()
        mine = partition(self.order(self.epoch), rank, world)
        for chunk in batches(mine, _CHUNK)[worker::workers]:
            batch = self.get_batch(chunk)
            for i in range(len(chunk)):
                yield _row(batch, i)


def _row(batch: Batch, i: int) -> Batch:
    return {name: value[i] for name, value in batch.items()}
