"""With workers, several consecutive batches per DataLoader item: the hand-off paid once.

Each item a worker returns crosses torch's queue machinery (pickling, a pipe, the main
thread's ``_data_queue.get``): ~0.4 ms here whatever it holds, more than a worker takes to
gather a batch of small in-RAM samples (~0.15 ms), so with 2 workers on 2 cores the main
process spent more on receiving batches than 0 workers spent on making them. ``ChunkSampler``
hands the DataLoader *chunks* of ``k`` consecutive index batches instead; a worker makes
them one after another into one ring slot (``transport.py``) and the main process unrolls
the chunk into its ``k`` batches (``unrolled``), in order, before they are counted, so the
loader's position, resume and ``state_dict()`` still count batches: a resume mid-chunk
starts at the first batch not yielded. ``k`` follows what workers report: chunks of about
``BUDGET_SECONDS`` of work and at most ``BUDGET_BYTES`` (a slot holds a chunk); it starts
at 1, and batches slower than the budget stay one per item. A dead worker's error names
the batches of its chunks (``batches_of``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from loadwise.loading.sampler import EpochBatchSampler
from loadwise.loading.transport import Ticket

#: Work per chunk to aim for: 10x the hand-off it saves, short enough not to delay batches.
BUDGET_SECONDS = 0.004
#: Most bytes a chunk writes (its slot keeps their pages for the loader's life): eager
#: 105x105 w2/w0 was 0.37x at 2 MB, 0.47x at 4, 0.61x at 8, 0.67x at 16 (interleaved);
#: with 2 slots x 2 workers, 8 MB is +46 MiB PSS over the idle tree, measured.
BUDGET_BYTES = 8 << 20
#: Most batches per chunk.
MAX_BATCHES = 32
#: Batches larger than this go one per item: the hand-off is small beside what the
#: consumer spends on them, and a ring whose chunks grew as a source got faster (cached
#: mode's later epochs) would hold more memory epoch after epoch.
SMALL_BYTES = 1 << 20


class Chunk:
    """``k`` consecutive index batches, made by one worker as one DataLoader item."""

    __slots__ = ("batches",)

    def __init__(self, batches: list[np.ndarray]) -> None:
        self.batches = batches

    def __reduce__(self) -> Any:
        return (Chunk, (self.batches,))


class Made(list[Any]):
    """A chunk's batches that went torch's way (not through a slot): unrolled the same."""


class ChunkSampler(Sampler[Chunk]):
    """``inner``'s batches grouped into chunks sized by what workers report (``observe``)."""

    def __init__(self, inner: EpochBatchSampler) -> None:
        self.inner = inner
        self.size = 1  # batches in the next chunk
        self.seconds: float | None = None  # a batch's work in a worker (smoothed)
        self.nbytes: float | None = None  # a batch's bytes in its slot (smoothed)
        self.starts: list[int] = []  # each chunk's first batch number in this epoch
        self.handed = 0  # batches handed out in this epoch

    def __iter__(self) -> Iterator[Chunk]:
        self.starts, self.handed, pending = [], 0, []
        for indices in self.inner:
            pending.append(indices)
            if len(pending) >= self.size:
                yield self._handed(pending)
                pending = []
        if pending:
            yield self._handed(pending)

    def _handed(self, batches: list[np.ndarray]) -> Chunk:
        self.starts.append(self.handed)
        self.handed += len(batches)
        return Chunk(batches)

    def __len__(self) -> int:
        """Batches, not chunks: the number of chunks depends on what workers report."""
        return len(self.inner)

    def observe(self, seconds: float, nbytes: int, batches: int) -> None:
        """A worker made ``batches`` batches in ``seconds``, writing ``nbytes``: resize."""
        each, size = seconds / batches, nbytes / batches
        self.seconds = each if self.seconds is None else 0.5 * (self.seconds + each)
        self.nbytes = size if self.nbytes is None else 0.5 * (self.nbytes + size)
        by_time = BUDGET_SECONDS / max(self.seconds, 1e-6)
        by_bytes = BUDGET_BYTES / max(self.nbytes, 1.0)
        self.size = int(max(1, min(by_time, by_bytes, MAX_BATCHES)))
        if self.nbytes > SMALL_BYTES:
            self.size = 1

    def batches_of(self, task: int) -> range:
        """The batch numbers (of ``inner.current``) DataLoader item ``task`` holds."""
        starts = self.starts
        if not 0 <= task < len(starts):
            return range(0)
        return range(starts[task], starts[task + 1] if task + 1 < len(starts) else self.handed)


def unrolled(items: Iterator[Any], observe: Callable[[float, int, int], None]) -> Iterator[Any]:
    """Each DataLoader item as the batches it holds: a slot opened (one batch or a chunk's),
    a chunk sent torch's way, or a plain batch."""
    for item in items:
        kind = type(item)
        if kind is Ticket:
            if item.seconds is not None:
                observe(item.seconds, item.nbytes, item.count)
            opened = item.open()
            if item.count:
                yield from opened
            else:
                yield opened
        elif kind is Made:
            yield from item
        else:
            yield item
