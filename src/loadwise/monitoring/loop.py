"""``monitor(loader)``: iterate any loader through it to see where time and memory go.

Per batch it costs two ``perf_counter`` calls and a list append (see ``clock.py``); memory
and CPU of the main process and each worker are sampled by a thread every ``interval``
seconds while an epoch runs, and once at each epoch's last batch while the workers are
alive (a few ms per epoch, kept out of the reported loop time). The thread starts after the
first batch arrives and is told to stop at the epoch's end, so DataLoader workers are not
forked while it runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from loadwise import torch_private as private
from loadwise.errors import ConfigError
from loadwise.monitoring.clock import BatchClock, StageClock, now
from loadwise.monitoring.sampler import ResourceSampler
from loadwise.monitoring.stats import MonitorStats, summarize


class Monitor:
    """Yields ``loader``'s batches unchanged; each ``iter()`` is one epoch.

    ``stats()`` returns a frozen ``MonitorStats`` at any time (also mid-epoch)::

        monitored = loadwise.monitor(loader)
        for epoch in range(3):
            for batch in monitored:
                step(batch)
        diagnosis = monitored.stats().diagnosis  # e.g. "input-bound: 43% ..."

    ``track(iterator)`` times one epoch of an iterator made elsewhere (the loader's own hook).
    """

    def __init__(
        self,
        loader: Iterable[Any] | None = None,
        *,
        interval: float = 0.5,
        max_cpu: float = 0.005,
    ) -> None:
        self.loader = loader
        self.sampler = ResourceSampler(interval=interval, max_cpu=max_cpu)
        # the sampler's method, not one of ours: no Monitor <-> clock cycle, so a dropped
        # monitor frees its loader (and stops persistent workers) at once, not at the next GC
        self.clock = BatchClock(on_last_batch=self.sampler.sample)
        #: Per-stage seconds of each batch; a monitored loadwise loader fills it.
        self.stages = StageClock()

    def __iter__(self) -> Iterator[Any]:
        if self.loader is None:
            raise ConfigError(
                "this Monitor has no loader to iterate: make it with `monitor(loader)`, or "
                "time iterators you create with `Monitor().track(iter(loader))`."
            )
        self._baseline()
        started = now()
        return self.track(iter(self.loader), started=started, source=self.loader)

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def track(
        self, iterator: Iterator[Any], *, started: float | None = None, source: Any = None
    ) -> Iterator[Any]:
        """One epoch of ``iterator``'s batches, each timed; ``source`` is asked for workers."""
        self._baseline()
        self.clock.start_epoch(now() if started is None else started, _length(source, iterator))
        return self._timed(iterator, source)

    def _timed(self, iterator: Iterator[Any], source: Any) -> Iterator[Any]:
        clock, clock_now, first = self.clock, now, True
        try:
            while True:
                asked = clock_now()
                try:
                    batch = next(iterator)
                except StopIteration:
                    clock.end_epoch(asked, clock_now())
                    return
                clock.record(asked, clock_now(), batch)
                if first:
                    first = False
                    self._found_workers(source, iterator)
                    self.sampler.start()
                yield batch
        finally:
            clock.close_epoch()
            self.sampler.stop(wait=False)  # its epoch-end sample still completes

    def stats(self) -> MonitorStats:
        """What the epochs so far cost; safe to call during an epoch."""
        if not self.clock.running:
            self.sampler.stop()  # let an epoch-end sample land first
        return summarize(
            list(self.clock.records),
            self.clock.spans(),
            list(self.sampler.samples),
            mode=_mode(self.loader),
            stages=self.stages.snapshot(),
        )

    def close(self) -> None:
        """Stop sampling (the thread also stops by itself at each epoch's end)."""
        self.sampler.stop()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _baseline(self) -> None:
        """Memory before the first epoch (before any worker starts), outside timed spans."""
        if not self.sampler.samples:
            self.sampler.sample()

    def _found_workers(self, source: Any, iterator: Any) -> None:
        pids = worker_pids(iterator)
        if pids is None and source is not None:
            pids = worker_pids(source)
        if pids is not None:
            self.sampler.set_workers(pids)


def _mode(loader: Any) -> str | None:
    """The access mode of the loadwise dataset behind ``loader``, if there is one."""
    mode = getattr(getattr(loader, "dataset", None), "mode", None)
    return mode if isinstance(mode, str) else None


def monitor(loader: Iterable[Any], *, interval: float = 0.5, max_cpu: float = 0.005) -> Monitor:
    """Wrap ``loader`` (loadwise's, a ``DataLoader``, any iterable) to time and sample it.

    ``interval`` is seconds between memory samples; ``max_cpu`` caps the share of wall time
    spent sampling (reading a big process's memory stalls its allocations): on large trees
    samples come less often than ``interval``.
    """
    return Monitor(loader, interval=interval, max_cpu=max_cpu)


def worker_pids(obj: Any) -> list[int] | None:
    """Pids of a torch DataLoader's workers, in worker-id order, if ``obj`` leads to them.

    Looks at a DataLoader iterator, a DataLoader keeping its iterator (persistent workers),
    and objects holding one as ``dataloader`` or ``loader`` (loadwise's loaders).
    """
    for candidate in (obj, getattr(obj, "dataloader", None), getattr(obj, "loader", None)):
        if candidate is None:
            continue
        pids = private.worker_pids(candidate)
        if pids is None:
            pids = private.worker_pids(private.live_iterator(candidate))
        if pids is None and candidate is not obj:
            pids = worker_pids(getattr(candidate, "dataloader", None))
        if pids is not None:
            return pids
    return None


def _length(source: Any, iterator: Any) -> int | None:
    for candidate in (iterator, source):
        try:
            return len(candidate) if candidate is not None else None
        except TypeError:
            continue
    return None
