"""Threads that share out the images of one batch; decoders release the GIL while decoding.

One pool per process and size, made on first use (threads do not survive ``fork``, so a
forked DataLoader worker makes its own).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class Threads:
    """A thread pool of ``count`` threads."""

    pool: ThreadPoolExecutor
    count: int

    def for_each(self, work: Callable[[range], object], count: int) -> None:
        """``work`` over ``range(count)`` in one contiguous piece per thread."""
        if self.count < 2 or count < 2:
            work(range(count))
            return
        step = -(-count // self.count)
        pieces = [range(i, min(i + step, count)) for i in range(0, count, step)]
        list(self.pool.map(work, pieces))  # re-raises the first error in piece order

    def map(self, work: Callable[[int], object], count: int) -> list[object]:
        """``[work(i) for i in range(count)]``, the items shared out among the threads."""
        if self.count < 2 or count < 2:
            return [work(i) for i in range(count)]
        return list(self.pool.map(work, range(count), chunksize=-(-count // self.count)))


_pools: dict[tuple[int, int], Threads] = {}


def threads(count: int) -> Threads | None:
    """This process's pool of ``count`` threads; None for one thread (decode in place)."""
    if count < 2:
        return None
    key = (os.getpid(), count)
    if key not in _pools:
        pool = ThreadPoolExecutor(count, thread_name_prefix="loadwise-decode")
        _pools[key] = Threads(pool, count)
    return _pools[key]
