"""``pack``'s worker processes: started by fork where it exists, killed with their parent,
fed a bounded number of tasks at a time and answering in submission order."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

_PR_SET_PDEATHSIG = 1


@contextmanager
def worker_pool(
    workers: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers die with this process; on leaving (also by an error or
    a closed generator) tasks not yet started are cancelled instead of run."""
    pool = ProcessPoolExecutor(
        workers,
        mp_context=context(),
        initializer=_start,
        initargs=(initializer, initargs),
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    die_with_parent()
    if initializer is not None:
        initializer(*initargs)


def bounded_map(
    pool: ProcessPoolExecutor, work: Callable[[Any], Any], items: Iterable[Any], ahead: int
) -> Iterator[Any]:
    """Like ``pool.map``, but with at most ``ahead`` items in flight, so memory stays bounded.

    Item ``i + ahead`` is submitted only once result ``i`` was taken and the caller asked
    for the next: a buffer used by task ``i`` can be reused by task ``i + ahead``.
    """
    pending: deque[Future[Any]] = deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def die_with_parent() -> None:
    """In a decode worker: exit when ``pack``'s process dies (Linux ``PR_SET_PDEATHSIG``).

    Idle pool workers never notice a SIGKILLed parent by themselves; without this every
    killed ``pack`` would leave its workers behind.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the call: nobody will signal us
        os._exit(1)


def context() -> Any:
    """Fork where it exists: workers start at once instead of re-importing torch."""
    return multiprocessing.get_context("fork" if can_fork() else "spawn")


def can_fork() -> bool:
    """Whether workers are forked, and so inherit this process's objects and shared memory."""
    return "fork" in multiprocessing.get_all_start_methods()
