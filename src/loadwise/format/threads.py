"""Threads that share out the pieces of one batch (images to decode, rows to gather); decoders
and numpy release the GIL meanwhile.

One pool per process and size, made on first use (threads do not survive ``fork``, so a
forked DataLoader worker makes its own).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Threads:
    """``count`` threads: the caller's and a pool of ``count - 1``."""

    pool: ThreadPoolExecutor
    count: int

    def for_each(self, work: Callable[[range], object], count: int) -> None:
        """``work`` over ``range(count)`` in small pieces taken in turn by the pool's threads
        and the calling thread, so one slow piece does not leave the others idle."""
        if self.count < 2 or count < 2:
            work(range(count))
            return
        step = max(1, count // (4 * self.count))
        pieces = iter([range(i, min(i + step, count)) for i in range(0, count, step)])
        lock = threading.Lock()
        errors: list[BaseException] = []

        def take() -> None:
            while not errors:
                with lock:
                    piece = next(pieces, None)
                if piece is None:
                    return
                try:
                    work(piece)
                except BaseException as exc:  # handed to the caller below
                    errors.append(exc)

        helpers = [self.pool.submit(take) for _ in range(self.count - 1)]
        take()
        for done in helpers:
            done.result()
        if errors:
            raise errors[0]

    def map(self, work: Callable[[int], T], count: int) -> list[T]:
        """``[work(i) for i in range(count)]``, the items shared out among the threads."""
        out: list[T | None] = [None] * count

        def run(rows: range) -> None:
            for i in rows:
                out[i] = work(i)

        self.for_each(run, count)
        return out  # type: ignore[return-value]  # every slot was filled


_pools: dict[tuple[int, int], Threads] = {}


def threads(count: int) -> Threads | None:
    """This process's pool of ``count`` threads; None for one thread (decode in place)."""
    if count < 2:
        return None
    key = (os.getpid(), count)
    if key not in _pools:
        pool = ThreadPoolExecutor(count - 1, thread_name_prefix="loadwise-decode")
        _pools[key] = Threads(pool, count)
    return _pools[key]
