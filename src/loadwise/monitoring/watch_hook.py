"""The process side of ``loadwise watch``: time every DataLoader epoch, write a report at exit.

``sitecustomize`` (in ``_startup/``) routes ``DataLoader.__iter__`` here. Each DataLoader gets
a ``BatchClock``; torch's base iterator's ``__next__`` is wrapped once so iterators keep their
type (code that inspects them still works) and each ``next()`` is timed. One sampler thread
watches the process tree; it is paused while an iterator is created, so workers are never
forked with it running. At exit, ``report-<pid>.json`` goes to ``$LOADWISE_WATCH_DIR``.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadwise.monitoring.clock import BatchClock, now
from loadwise.monitoring.loop import worker_pids
from loadwise.monitoring.sampler import ResourceSampler
from loadwise.monitoring.stats import summarize
from loadwise.torch_private import base_iterator_class

ENV_DIR, ENV_INTERVAL = "LOADWISE_WATCH_DIR", "LOADWISE_WATCH_INTERVAL"
_session: Session | None = None


class Session:
    """Every DataLoader this process iterates, and the memory of its process tree."""

    def __init__(self, report_dir: Path, interval: float) -> None:
        self.report_dir, self.pid = report_dir, os.getpid()
        self.sampler = ResourceSampler(interval=interval)
        self.loaders: list[tuple[str, BatchClock]] = []
        self._clocks: weakref.WeakKeyDictionary[Any, BatchClock] = weakref.WeakKeyDictionary()
        _patch_next()
        atexit.register(self.write)

    def iterate(self, loader: Any, original: Callable[[Any], Any]) -> Any:
        """``DataLoader.__iter__`` with the new epoch's iterator registered for timing."""
        clock = self._clock(loader)
        self.sampler.stop()  # no thread running while workers fork
        if not self.sampler.samples:
            self.sampler.sample()
        started = now()
        iterator = original(loader)
        try:
            expected: int | None = len(iterator)
        except TypeError:
            expected = None
        number = next(i for i, (_, c) in enumerate(self.loaders) if c is clock)
        pids = worker_pids(iterator)
        if pids:
            self.sampler.set_workers(pids, prefix=f"loader {number + 1} " if number else "")
        clock.start_epoch(started, expected)  # may snapshot memory: workers named first
        iterator.__dict__["_loadwise_clock"] = clock
        self.sampler.start()
        return iterator

    def _clock(self, loader: Any) -> BatchClock:
        clock = self._clocks.get(loader)
        if clock is None:
            clock = self._clocks[loader] = BatchClock(on_last_batch=self._snapshot)
            dataset = type(getattr(loader, "dataset", None)).__name__
            label = (
                f"DataLoader {len(self.loaders) + 1}: {dataset}, batch_size="
                f"{getattr(loader, 'batch_size', None)}, num_workers="
                f"{getattr(loader, 'num_workers', 0)}"
            )
            self.loaders.append((label, clock))
        return clock

    def _snapshot(self) -> None:
        self.sampler.sample()  # here, not in the thread: the workers are surely still alive

    def report(self) -> dict[str, Any]:
        """Stats of every DataLoader that yielded a batch, as plain JSON-ready values."""
        samples = list(self.sampler.samples)
        loaders = []
        for label, clock in self.loaders:
            clock.close_epoch()
            if clock.records:
                stats = summarize(list(clock.records), clock.spans(), samples)
                loaders.append({"label": label, "stats": stats.to_dict()})
        return {"pid": self.pid, "argv": list(sys.argv), "loaders": loaders}

    def write(self) -> None:
        """At exit, in the process that iterated: ``report-<pid>.json`` if anything ran."""
        if os.getpid() != self.pid:
            return
        self.sampler.stop()
        report = self.report()
        if report["loaders"]:
            path = self.report_dir / f"report-{self.pid}.json"
            path.write_text(json.dumps(report) + "\n")


def session() -> Session:
    """This process's session, made on first use from ``$LOADWISE_WATCH_DIR``."""
    global _session
    if _session is None:
        interval = float(os.environ.get(ENV_INTERVAL) or 0.5)
        _session = Session(Path(os.environ[ENV_DIR]), interval)
    return _session


def _patch_next() -> None:
    """Time ``next()`` of every DataLoader iterator that carries a clock."""
    base = base_iterator_class()
    if getattr(base.__next__, "_loadwise", False):
        return
    original = base.__next__

    def __next__(self: Any) -> Any:
        clock: BatchClock | None = self.__dict__.get("_loadwise_clock")
        if clock is None:
            return original(self)
        asked = now()
        try:
            batch = original(self)
        except StopIteration:
            clock.end_epoch(asked, now())
            raise
        clock.record(asked, now(), batch)
        return batch

    __next__._loadwise = True  # type: ignore[attr-defined]
    base.__next__ = __next__
