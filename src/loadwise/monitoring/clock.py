"""Per-batch timings of one loader: the consumer's wait for each batch and its work between.

A loop alternates two phases: waiting in ``next()`` for a batch (data wait) and working on
it until the next ``next()`` (the training step). ``BatchClock`` keeps, per batch, when it was
asked for and when it arrived, with its samples and bytes; epochs are spans of batches.
Recording one batch is two ``perf_counter`` calls, a look at the batch's arrays and one list
append, so the clock itself stays far below a millisecond per batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: (asked, arrived, samples, bytes) of one batch; times are ``time.perf_counter()`` seconds.
Record = tuple[float, float, int, int]

#: A batch's stages in order: the main process waiting for it (``fetch``), reading and
#: decoding it wherever it is made (``gather``, ``decode``), the batch transform, the move
#: to the device (``transfer``).
STAGES = ("fetch", "gather", "decode", "transform", "transfer")


@dataclass(frozen=True)
class EpochSpan:
    """One pass: its batches are ``records[first:stop]``.

    ``started`` is when the pass was asked for (``iter()``), so starting workers counts as
    waiting for the first batch. ``tail_step`` is the consumer's work after the last batch,
    ``tail_wait`` the time the end of the pass took (``StopIteration``, worker shutdown).
    """

    epoch: int
    first: int
    stop: int
    started: float
    ended: float
    tail_step: float = 0.0
    tail_wait: float = 0.0


class BatchClock:
    """Records batches and epochs of one loader; ``on_last_batch`` runs once an epoch ends.

    ``on_last_batch`` is called when the batch count reaches the ``expected`` length given
    to ``start_epoch`` (workers are still alive then), else when the epoch ends.
    """

    def __init__(self, on_last_batch: Callable[[], object] | None = None) -> None:
        self.records: list[Record] = []
        self.epochs: list[EpochSpan] = []
        self.on_last_batch = on_last_batch
        self._open: tuple[int, int, float] | None = None  # (epoch, first, started)
        self._expected: int | None = None
        self._called = False
        self._hidden = 0.0  # seconds ``on_last_batch`` took, kept out of the consumer's step

    @property
    def running(self) -> bool:
        return self._open is not None

    def start_epoch(self, started: float, expected: int | None = None) -> None:
        """A new pass begins (a pass left unfinished, e.g. by ``break``, ends here)."""
        self.close_epoch()
        self._open = (len(self.epochs), len(self.records), started)
        self._expected, self._called, self._hidden = expected, False, 0.0

    def record(self, asked: float, arrived: float, batch: Any) -> None:
        """One batch: asked for at ``asked``, in hand at ``arrived``."""
        samples, nbytes = batch_size_of(batch)
        self.records.append((asked, arrived, samples, nbytes))
        opened = self._open
        if opened is not None and self._expected == len(self.records) - opened[1]:
            self._last_batch()

    def end_epoch(self, asked: float, ended: float) -> None:
        """The pass is over (``StopIteration``): asked for at ``asked``, raised at ``ended``."""
        if self._open is None:
            return
        previous = self.records[-1][1] if len(self.records) > self._open[1] else self._open[2]
        step = max(asked - previous - self._hidden, 0.0)
        self._finish(ended, tail_step=step, tail_wait=ended - asked)

    def close_epoch(self) -> None:
        """End an unfinished pass at its last batch (the consumer stopped asking)."""
        if self._open is None:
            return
        self._finish(self.records[-1][1] if len(self.records) > self._open[1] else self._open[2])

    def _finish(self, ended: float, tail_step: float = 0.0, tail_wait: float = 0.0) -> None:
        assert self._open is not None
        epoch, first, started = self._open
        self._open = None
        self.epochs.append(
            EpochSpan(epoch, first, len(self.records), started, ended, tail_step, tail_wait)
        )
        self._last_batch()

    def _last_batch(self) -> None:
        """Run ``on_last_batch`` once; its time is not the consumer's (see ``end_epoch``)."""
        if not self._called and self.on_last_batch is not None:
            self._called = True
            started = time.perf_counter()
            self.on_last_batch()
            self._hidden = time.perf_counter() - started

    def spans(self, now: float | None = None) -> list[EpochSpan]:
        """Finished epochs, plus the running one as it stands."""
        spans = list(self.epochs)
        if self._open is not None:
            epoch, first, started = self._open
            stop = len(self.records)
            ended = self.records[stop - 1][1] if stop > first else started
            spans.append(EpochSpan(epoch, first, stop, started, ended if now is None else now))
        return spans


class StageClock:
    """Seconds each batch spent in each stage, as a monitored loader reports them."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def add(self, stage: str, seconds: float) -> None:
        """One batch's ``seconds`` in ``stage`` (one list append)."""
        found = self.seconds.get(stage)
        if found is None:
            found = self.seconds[stage] = []
        found.append(seconds)

    def snapshot(self) -> dict[str, list[float]]:
        """A copy, in ``STAGES`` order (then any other stage), safe to read while it runs."""
        order = [s for s in STAGES if s in self.seconds]
        order += sorted(set(self.seconds) - set(STAGES))
        return {stage: list(self.seconds[stage]) for stage in order}


def batch_size_of(batch: Any) -> tuple[int, int]:
    """(samples, bytes) of a batch: leading size of its first array, bytes of all its arrays.

    Walks dicts, lists and tuples two levels deep; anything with ``shape`` and ``nbytes``
    (torch tensors, numpy arrays) counts. A batch with no arrays counts ``len`` samples.
    """
    arrays: list[Any] = []
    _collect(batch, arrays, 3)
    if not arrays:
        return (len(batch) if hasattr(batch, "__len__") else 1), 0
    shape = arrays[0].shape
    return (int(shape[0]) if len(shape) else 1), sum(int(a.nbytes) for a in arrays)


def _collect(value: Any, into: list[Any], depth: int) -> None:
    if hasattr(value, "nbytes") and hasattr(value, "shape"):
        into.append(value)
    elif depth > 0 and isinstance(value, dict):
        for item in value.values():
            _collect(item, into, depth - 1)
    elif depth > 0 and isinstance(value, list | tuple) and len(value) <= 64:
        for item in value:
            _collect(item, into, depth - 1)


def now() -> float:
    """The clock every monitor record uses."""
    return time.perf_counter()
