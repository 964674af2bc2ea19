"""Where a batch is made: in a DataLoader worker, or in this process with 0 workers.

``BatchView`` is the map-style dataset the loader's DataLoader reads: its item for an index
array is the whole batch, gathered once (``get_batch``), or the samples of one
``__getitems__`` call handed to the user's ``collate_fn``. ``CollateThen`` does the same job
for datasets fetched a sample at a time. Both then run the batch transform (unless the
loader runs it after moving the batch to a device) and, when the loader is monitored,
return ``(batch, {stage: seconds})`` so the main process learns how long gather, decode and
transform took wherever they ran; the loader unpacks it, so users get the batch alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from time import perf_counter
from typing import Any

import numpy as np
from torch.utils.data import Dataset, default_collate

from loadwise import stages
from loadwise.loading.chunks import Chunk, Made
from loadwise.loading.transport import Rings, SlotWriter

Collate = Callable[[Any], Any]
Transform = Callable[[Any], Any]


class _Finishing:
    """The end every batch goes through where it is made: transform, then stage times."""

    transform: Transform | None
    timed: bool

    def _start(self) -> None:
        if self.timed:
            stages.enable()  # the switch is per process: a worker turns it on for itself

    def _finish(self, batch: Any) -> Any:
        if self.transform is not None:
            with stages.span("transform"):
                batch = self.transform(batch)
        return (batch, stages.take()) if self.timed else batch


class BatchView(_Finishing, Dataset):
    """Items are whole batches: ``view[indices]`` is ``get_batch(indices)`` (one gather), or
    ``collate_fn(dataset.__getitems__(indices))`` (the same samples a per-sample
    DataLoader would have collated, fetched in one call)."""

    def __init__(
        self,
        dataset: Any,
        collate_fn: Collate | None = None,
        transform: Transform | None = None,
        timed: bool = False,
    ) -> None:
        self.dataset, self.collate_fn = dataset, collate_fn
        self.transform, self.timed = transform, timed
        #: With workers: each worker's ring of shared batch slots (``transport.py``).
        self.rings: Rings | None = None

    def __getitem__(self, indices: np.ndarray | Chunk) -> Any:
        writer = self.rings.writer() if self.rings is not None else None
        if isinstance(indices, Chunk):
            return self._chunk(indices.batches, writer)
        if writer is None:
            return self._made(indices)
        with writer:  # outputs allocated in the slot, the rest copied in by ``ship``
            return writer.ship(self._made(indices))

    def _chunk(self, batches: list[np.ndarray], writer: SlotWriter | None) -> Any:
        """A chunk's batches one after another, into one slot (``chunks.py``)."""
        if writer is None:
            return Made(self._made(indices) for indices in batches)
        with writer:
            started = perf_counter()
            made = [self._made(indices) for indices in batches]
            out = writer.ship(made, len(made), perf_counter() - started)
        return Made(out) if type(out) is list else out

    def _made(self, indices: np.ndarray) -> Any:
        self._start()
        if self.collate_fn is None:
            return self._finish(self.dataset.get_batch(indices))
        return self._finish(self.collate_fn(samples_of(self.dataset, indices)))

    def __len__(self) -> int:
        return len(self.dataset)


class CollateThen(_Finishing):
    """A per-sample DataLoader's ``collate_fn``: the user's (or torch's default), then finish."""

    def __init__(
        self, collate_fn: Collate | None, transform: Transform | None, timed: bool = False
    ) -> None:
        self.collate_fn = collate_fn or default_collate
        self.transform, self.timed = transform, timed

    def __call__(self, samples: Any) -> Any:
        self._start()
        return self._finish(self.collate_fn(samples))


def samples_of(dataset: Any, indices: Sequence[int] | np.ndarray) -> list[Any]:
    """The samples at ``indices`` as torch's fetcher gets them: one ``__getitems__`` call
    with a list of ints where the dataset has it, else one ``dataset[i]`` each."""
    chosen = indices.tolist() if isinstance(indices, np.ndarray) else list(indices)
    getitems = getattr(dataset, "__getitems__", None)
    if callable(getitems):
        return list(getitems(chosen))
    return [dataset[i] for i in chosen]


def made_here(view: BatchView, batches: Iterable[np.ndarray]) -> Iterator[Any]:
    """Each index batch made in this process (0 workers: no DataLoader in between)."""
    if view.collate_fn is None and view.transform is None and not view.timed:
        get_batch = view.dataset.get_batch  # the plain path, kept to one call a batch
        for indices in batches:
            yield get_batch(indices)
        return
    make = view.__getitem__
    try:
        for indices in batches:
            yield make(indices)
    finally:
        if view.timed:
            stages.enable(False)  # this process's later get_batch calls are not timed
