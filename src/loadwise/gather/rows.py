"""The row gather of every mode: from 64 KB on in ``torch.index_select`` on torch's own
threads, numpy below that (and in forked children where torch's threads would hang)."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch

from loadwise.gather import recycle

#: Gathers of at least this many bytes run in ``torch.index_select`` (``take_rows``).
TORCH_GATHER_BYTES = 64 << 10
_TORCH_DTYPES = frozenset(
    np.dtype(t)
    for t in ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32",
              "float64", "complex64", "complex128")
)  # fmt: skip


def _rows_contiguous(source: np.ndarray) -> bool:
    """C-contiguous, or rows of contiguous items at any positive step (lazy's row view)."""
    if source.flags.c_contiguous:
        return True
    return source.ndim == 2 and source.strides[1] == source.itemsize and source.strides[0] > 0


_forked = [False]  # set in a child made by fork (register_at_fork below)


def torch_threads_safe() -> bool:
    """Whether torch ops may run here: in a forked child an OpenMP region of torch hangs
    (its threads stayed in the parent) unless torch runs on one thread, as DataLoader
    workers do; such a child gathers with numpy."""
    return not _forked[0] or torch.get_num_threads() == 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _forked.__setitem__(0, True))
    os.register_at_fork(after_in_child=lambda: _choice().after_fork())


def take_rows(source: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``source[rows]`` (``rows`` already checked). From ``TORCH_GATHER_BYTES`` on, a
    C-contiguous source is gathered by ``torch.index_select`` on torch's intra-op threads
    into a reused buffer (``recycle``).

    Why torch's threads: after any torch op its OpenMP threads spin for a while, so threads
    of our own gathering then ran at half speed on 2 cores (14 MB of few-shot tasks after a
    collate: 3.1 ms, torch's 1.5 ms; a batch of 64 images: 167 vs 107 us). Lazy mode's
    overlapping-rows view (terabytes virtually) goes the same way: ``index_select`` reads
    only the rows asked for (110 -> 58 us a batch). Any other source gets one numpy gather,
    and so does a forked child with torch on several threads (``torch_threads_safe``).
    """
    nbytes = len(rows) * source.itemsize * math.prod(source.shape[1:])
    if not (
        nbytes >= TORCH_GATHER_BYTES and _rows_contiguous(source) and source.flags.writeable
    ) or (source.dtype not in _TORCH_DTYPES or rows.dtype != np.int64 or not torch_threads_safe()):
        return source[rows]
    threaded = _CHOICE.threaded() if torch.get_num_threads() > 1 else None
    started = time.perf_counter()
    if threaded is False:
        out = source[rows]
    else:
        out = recycle.empty((len(rows), *source.shape[1:]), source.dtype)
        whole, picks = torch.from_numpy(source), torch.from_numpy(rows)
        torch.index_select(whole, 0, picks, out=torch.from_numpy(out))
    if threaded is not None:
        _CHOICE.record(threaded, nbytes / max(time.perf_counter() - started, 1e-9))
    return out


def take_rows_into(source: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = source[rows]`` for a C-contiguous 2-D ``source`` and ``out`` (cached
    mode's arena): on torch's threads or this one, whichever ``_Choice`` measured faster."""
    threaded = _CHOICE.threaded() if torch.get_num_threads() > 1 else None
    started = time.perf_counter()
    if threaded is False or not torch_threads_safe():
        np.take(source, rows, axis=0, out=out, mode="clip")  # rows are checked by the caller
    else:
        torch.index_select(torch.from_numpy(source), 0, torch.from_numpy(rows),
                           out=torch.from_numpy(out))  # fmt: skip
    if threaded is not None:
        _CHOICE.record(threaded, out.nbytes / max(time.perf_counter() - started, 1e-9))


class _Choice:
    """Whether large gathers run on torch's threads or on this one, by their measured
    bytes/s: torch's threads win on a quiet machine (107 vs 167 us a batch), but each waits
    for the slowest, so while other processes hold the cores a 2-thread gather stalls
    (24-130k samples/s of 150 KB rows within a minute here; one thread steady, NOTES.md).
    One thread is tried every ``EXPLORE`` gathers (cheap); the threads, whose trial can
    stall, after a gap that doubles each time they lose (up to ``MAX_GAP``)."""

    EXPLORE, MAX_GAP = 16, 4096
    WEIGHT = 0.25  # of the newest figure in each running mean

    def __init__(self) -> None:
        self.rates: dict[bool, float] = {}
        self.count, self.gap, self.due = 0, self.EXPLORE, self.EXPLORE

    def threaded(self) -> bool:
        self.count += 1
        if len(self.rates) < 2:
            return True not in self.rates
        if self.rates[True] >= self.rates[False]:  # threads lead: check one thread now and then
            return self.count % self.EXPLORE != 0
        return self.count >= self.due

    def record(self, threaded: bool, rate: float) -> None:
        old = self.rates.get(threaded)
        self.rates[threaded] = rate if old is None else old + self.WEIGHT * (rate - old)
        if threaded and self.count >= self.due and len(self.rates) == 2:
            won = self.rates[True] >= self.rates[False]
            self.gap = self.EXPLORE if won else min(2 * self.gap, self.MAX_GAP)
            self.due = self.count + self.gap

    def after_fork(self) -> None:
        self.__init__()  # type: ignore[misc]


_CHOICE = _Choice()


def _choice() -> _Choice:
    return _CHOICE
