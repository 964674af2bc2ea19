"""The threads one batch may use in this process, and the pool that shares out its pieces
(images to decode, large copies); decoders and numpy release the GIL meanwhile.

A batch's threads are the process's usable cores, divided among DataLoader workers when in
one (``LOADWISE_THREADS`` overrides). One pool per process and size, made on first use
(threads do not survive ``fork``, so a forked DataLoader worker makes its own). Row gathers
run on torch's own threads instead (``rows.py``).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from loadwise.errors import ConfigError

T = TypeVar("T")
THREADS_ENV = "LOADWISE_THREADS"
#: Copies of at least this many bytes are shared out among the batch's threads: a fresh
#: output's page faults and the copy both scale with cores (35 MB: 7.6 -> 4.7 ms on 2
#: cores); below it a thread hand-off costs more than it saves.
PARALLEL_BYTES = 4 << 20


def batch_threads() -> int:
    """Threads a batch may use in this process."""
    if (given := os.environ.get(THREADS_ENV)) is not None:
        if not given.isdigit() or int(given) < 1:
            raise ConfigError(f"`{THREADS_ENV}` must be an integer >= 1. Found: {given!r}.")
        return int(given)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // _workers_here())


def _workers_here() -> int:
    """How many DataLoader workers share the cores, seen from this process (a process that
    never imported torch's data package is no DataLoader worker: torch stays unimported)."""
    data = sys.modules.get("torch.utils.data")
    worker = data.get_worker_info() if data is not None else None
    return worker.num_workers if worker is not None else 1


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
