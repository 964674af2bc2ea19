"""Large batch buffers used again once nothing refers to them: no fresh pages per batch.

A fresh output of tens of MB costs the kernel's page faults and zeroing on every batch: for
a 35 MB gather of few-shot tasks as long as the copy itself (8.9 -> 4.3 ms on 2 threads
here), since malloc maps allocations over 32 MB fresh each time and trims the heap below.
A buffer is handed out again only when no array or tensor views it any more: every numpy
view of it refers to it directly (numpy points views at the array that owns the memory),
and a tensor made by ``torch.from_numpy`` keeps its array, so its reference count says so.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

#: Buffers below this size come from malloc as usual: its heap reuses them cheaply.
POOLED_BYTES = 4 << 20
#: Most bytes of buffers one process keeps for reuse (in use or idle).
MAX_BYTES = 256 << 20


def _idle_refs() -> int:
    """What ``getrefcount`` says of a buffer only the pool's list holds (2 on CPython 3.11:
    the list and the call's argument; measured, since newer interpreters may count less)."""
    probe = [np.empty(1, np.uint8)]
    return sys.getrefcount(probe[0])


_IDLE_REFS = _idle_refs()


class BufferPool:
    """Byte buffers by size; ``empty`` reuses one that nothing refers to."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buffers: list[np.ndarray] = []
        self._lock = threading.Lock()

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialised array, like ``np.empty``, on a reused buffer when one is idle."""
        nbytes = dtype.itemsize * math.prod(shape)
        if nbytes < POOLED_BYTES:
            return np.empty(shape, dtype)
        with self._lock:
            raw = self._idle(nbytes)
            if raw is None:
                raw = self._new(nbytes)
        return raw.view(dtype).reshape(shape)

    def held_bytes(self) -> int:
        return sum(b.nbytes for b in self._buffers)

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (a thread may have held the parent's)."""
        self._lock = threading.Lock()

    def _idle(self, nbytes: int) -> np.ndarray | None:
        buffers = self._buffers
        for i in range(len(buffers)):
            if buffers[i].nbytes == nbytes and _unused(buffers, i):
                return buffers[i]
        return None

    def _new(self, nbytes: int) -> np.ndarray:
        """A new buffer, kept for reuse if it fits once idle buffers of other sizes go."""
        raw = np.empty(nbytes, np.uint8)
        held = self.held_bytes()
        for i in reversed(range(len(self._buffers))):
            if held + nbytes <= self.max_bytes:
                break
            if _unused(self._buffers, i):
                held -= self._buffers.pop(i).nbytes
        if held + nbytes <= self.max_bytes:
            self._buffers.append(raw)
        return raw


def _unused(buffers: list[np.ndarray], i: int) -> bool:
    """Whether only ``buffers`` refers to its ``i``-th buffer (no array or tensor views it)."""
    return sys.getrefcount(buffers[i]) == _IDLE_REFS


_POOL = BufferPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOL.after_fork)


Destination = Callable[[tuple[int, ...], np.dtype], "np.ndarray | None"]
#: Where batch outputs go first while a DataLoader worker makes a batch into shared memory
#: (``loading/transport.py`` sets it around each batch); None: this process's own buffers.
_destination: list[Destination | None] = [None]


def set_destination(destination: Destination | None) -> None:
    """Make ``empty`` allocate from ``destination`` first (None: back to the pool)."""
    _destination[0] = destination


def has_destination() -> bool:
    return _destination[0] is not None


def _nowhere(shape: tuple[int, ...], dtype: np.dtype) -> None:
    return None


@contextmanager
def private() -> Iterator[None]:
    """Outputs made inside come from this process's own buffers even while a worker ships a
    batch into a shared slot: for intermediates the batch is then copied from (cached mode's
    freshly decoded misses), which would otherwise take slot room twice."""
    saved = _destination[0]
    if saved is not None:
        _destination[0] = _nowhere
    try:
        yield
    finally:
        _destination[0] = saved


def empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``np.empty`` for batch outputs: in the batch's shared slot while a worker ships into
    one, else large ones on this process's reused buffers."""
    destination = _destination[0]
    if destination is not None and (out := destination(shape, dtype)) is not None:
        return out
    return _POOL.empty(shape, dtype)
