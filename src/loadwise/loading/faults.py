"""Turn torch's "worker died" and "timed out" errors into ones that say what was lost.

torch reports a dead worker by pid only. The loader knows which batch it sent to which
worker (torch's iterator keeps that table), so the error can name the worker, the batch
and its first samples: enough to find a poisoned sample or an OOM-sized batch.
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from loadwise.errors import WorkerError
from loadwise.torch_private import awaited_batch, tasks_in_flight, worker_processes

_DIED = re.compile(r"DataLoader worker \(pids?(?:\(s\))? ([\d, ]+)\)")
_SHOWN = 8


def worker_failure(
    exc: BaseException,
    iterator: Any,
    batches: Sequence[np.ndarray],
    epoch: int,
    position: int,
    numbers: Callable[[int], Sequence[int]] | None = None,
) -> WorkerError | None:
    """A ``WorkerError`` for torch's worker failure ``exc``, or None if it is something else.

    torch says "worker ... exited/killed" or "timed out" (RuntimeError); a worker dying
    mid-message can also surface as a broken connection (ConnectionError, EOFError).
    ``numbers``: the batch numbers DataLoader item ``k`` holds, when items are chunks.
    """
    text = str(exc)
    died = _DIED.search(text) if isinstance(exc, RuntimeError) else None
    timed_out = isinstance(exc, RuntimeError) and "timed out" in text
    procs = worker_processes(iterator)
    broken = isinstance(exc, ConnectionError | EOFError) and bool(procs)
    if died is None and not timed_out and not broken:
        return None
    workers = [getattr(w, "pid", None) for w in procs]
    if died:
        pids = [int(p) for p in re.findall(r"\d+", died.group(1))]
    else:
        pids = [w.pid for w in procs if broken and not w.is_alive()]
    ids = [workers.index(p) for p in pids if p in workers]
    pending = _pending(iterator, ids)
    if numbers is not None:
        pending = [n for task in pending for n in numbers(task)]
    who = (
        ", ".join(f"worker {i} (pid {workers[i]})" for i in ids)
        if ids
        else (f"pid {', '.join(map(str, pids))}" if pids else "a worker")
    )
    what = "timed out" if timed_out else "died (killed by a signal or the out-of-memory killer?)"
    lost = "; ".join(_describe(k, batches) for k in pending) or "no batch was in flight"
    return WorkerError(
        f"DataLoader {who} {what} in epoch {epoch} after {position} samples were delivered; "
        f"batches in flight: {lost}. Resume from your last `state_dict()` checkpoint; if it "
        f"recurs at the same samples, check them (or give the workers more memory or time).",
        worker=ids[0] if ids else None,
        pid=(workers[ids[0]] if ids else pids[0]) if ids or pids else None,
        batches=tuple(np.asarray(batches[k]) for k in pending if 0 <= k < len(batches)),
        epoch=epoch,
    )


def _pending(iterator: Any, worker_ids: list[int]) -> list[int]:
    """Batch numbers sent to these workers (or awaited, if none known) and not received."""
    tasks = tasks_in_flight(iterator)
    mine = [k for k, worker in tasks.items() if worker_ids and worker in worker_ids]
    if mine:
        return sorted(mine)
    awaited = awaited_batch(iterator)
    return [awaited] if awaited is not None else sorted(tasks)[:1]


def _describe(number: int, batches: Sequence[np.ndarray]) -> str:
    if not 0 <= number < len(batches):
        return f"batch {number}"
    indices = np.asarray(batches[number]).tolist()
    shown = ", ".join(map(str, indices[:_SHOWN])) + (", ..." if len(indices) > _SHOWN else "")
    return f"batch {number} (samples [{shown}])"


class DeferredWorkerDeath:
    """Hold torch's "worker killed" error until the loop next asks for a batch.

    torch raises it from a SIGCHLD handler, i.e. wherever the main thread happens to be
    (inside the user's training step). Wrapping that handler keeps the error, and the
    loader raises it as a ``WorkerError`` naming the worker and batch at the next ``next``.
    """

    wrapped: Any = None
    pending: RuntimeError | None = None

    @staticmethod
    def install() -> None:
        """Wrap the current SIGCHLD handler (torch's, once a worker iterator exists)."""
        if threading.current_thread() is not threading.main_thread() or not hasattr(
            signal, "SIGCHLD"
        ):
            return
        current = signal.getsignal(signal.SIGCHLD)
        if current is _deferring_handler or not callable(current):
            return
        DeferredWorkerDeath.wrapped = current
        signal.signal(signal.SIGCHLD, _deferring_handler)

    @staticmethod
    def take() -> RuntimeError | None:
        pending, DeferredWorkerDeath.pending = DeferredWorkerDeath.pending, None
        return pending


def _deferring_handler(signum: int, frame: Any) -> None:
    try:
        DeferredWorkerDeath.wrapped(signum, frame)
    except RuntimeError as exc:
        DeferredWorkerDeath.pending = exc
