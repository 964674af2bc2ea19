"""Memory of a process tree (main + DataLoader workers), counted once: PSS, not RSS.

A forked worker maps the same pages as its parent (the interpreter, torch, an eager
dataset), so summing RSS over main + workers counts each shared page once per
process. PSS (proportional set size) splits a shared page between the processes mapping it,
so the PSS of a tree adds up to what the tree really holds. USS is what each process holds
alone: what freeing that process would give back.

On Linux each process is read from ``/proc/<pid>/smaps_rollup`` (one small read, about a
millisecond), which also splits PSS into anonymous (heap, eager arrays), file-backed (memory
maps, shared libraries) and shared-memory (``shmem``, e.g. batches from workers) parts.
Elsewhere, or when that file cannot be read, psutil's ``memory_full_info`` is used; where the
system has no PSS at all (macOS, Windows) ``pss`` falls back to RSS and
``TreeMemory.exact_pss`` is False.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

import psutil

from loadwise.errors import ConfigError

#: Lines of ``smaps_rollup`` read, and the name each is kept under (sizes are in kB).
_ROLLUP_KEYS = {
    b"Rss:": "rss",
    b"Pss:": "pss",
    b"Pss_Anon:": "pss_anon",
    b"Pss_File:": "pss_file",
    b"Pss_Shmem:": "pss_shmem",
    b"Private_Clean:": "private",
    b"Private_Dirty:": "private",
    b"Private_Hugetlb:": "private",
    b"Swap:": "swap",
}


@dataclass(frozen=True)
class ProcessMemory:
    """One process, in bytes. ``shared = rss - uss``: resident pages other processes map too.

    ``pss_anon``/``pss_file``/``pss_shmem`` split ``pss`` (heap, mapped files and shared
    libraries, shared memory); None where the kernel does not report them.
    """

    pid: int
    role: str
    rss: int
    pss: int
    uss: int
    shared: int
    swap: int
    pss_anon: int | None = None
    pss_file: int | None = None
    pss_shmem: int | None = None


@dataclass(frozen=True)
class TreeMemory:
    """A snapshot of a process and its descendants; ``total_pss`` counts shared pages once."""

    processes: tuple[ProcessMemory, ...]
    exact_pss: bool = True
    taken_at: float = field(default_factory=time.time)

    @property
    def total_pss(self) -> int:
        return sum(p.pss for p in self.processes)

    @property
    def total_uss(self) -> int:
        return sum(p.uss for p in self.processes)

    @property
    def total_rss(self) -> int:
        """Summed RSS: overstates the tree's memory by every page its processes share."""
        return sum(p.rss for p in self.processes)

    def role_pss(self, role: str) -> int:
        """Total PSS of the processes in ``role`` ("main" or "worker")."""
        return sum(p.pss for p in self.processes if p.role == role)

    @property
    def workers(self) -> tuple[ProcessMemory, ...]:
        return tuple(p for p in self.processes if p.role == "worker")


def process_memory(pid: int | None = None, include_children: bool = True) -> TreeMemory:
    """Memory of process ``pid`` (this one by default) and, recursively, its children.

    The process itself has role "main", its descendants "worker". Children that exit while
    they are being read are left out; a ``pid`` that does not exist is a ``ConfigError``.
    """
    root = _process(pid)
    main = _read(root, "main")
    if main is None:
        raise ConfigError(f"process {root.pid} exited while its memory was being read.")
    readings: list[tuple[ProcessMemory, bool] | None] = [main]
    if include_children:
        readings += [_read(child, "worker") for child in _children(root)]
    found = [r for r in readings if r is not None]
    return TreeMemory(tuple(r[0] for r in found), exact_pss=all(r[1] for r in found))


class PeakMemory:
    """Samples ``process_memory`` in a background thread; keeps the peak total PSS.

    ``baseline_pss`` is taken on entry, ``peak_pss`` is the highest total PSS seen between
    entry and exit (per role in ``peak_by_role``), ``samples`` counts the snapshots taken.
    A snapshot costs about 2 ms per 100 MB resident per process (the kernel walks the page
    tables), so sampling slows down when needed to keep its CPU time under ``max_cpu`` of one
    core (1.0: every ``interval`` whatever it costs). Workers that exit between samples are
    simply absent from later ones::

        with PeakMemory() as memory:
            for batch in loader: ...
        growth = memory.peak_pss - memory.baseline_pss
    """

    def __init__(
        self,
        pid: int | None = None,
        *,
        interval: float = 0.05,
        max_cpu: float = 0.1,
        include_children: bool = True,
    ) -> None:
        if not interval > 0:
            raise ConfigError(f"`interval` must be positive. Found: {interval!r}.")
        if not 0 < max_cpu <= 1:
            raise ConfigError(f"`max_cpu` must be in (0, 1]. Found: {max_cpu!r}.")
        self.pid, self.interval, self.include_children = pid, interval, include_children
        self._idle_per_busy = 1 / max_cpu - 1
        self.baseline: TreeMemory | None = None
        self.peak: TreeMemory | None = None
        self.peak_rss = 0
        self.samples = 0
        self.error: BaseException | None = None
        self._peak_by_role: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()  # ``sample`` may also be called from the caller's thread
        self._thread: threading.Thread | None = None

    @property
    def baseline_pss(self) -> int:
        return self.baseline.total_pss if self.baseline is not None else 0

    @property
    def peak_pss(self) -> int:
        return self.peak.total_pss if self.peak is not None else 0

    @property
    def peak_by_role(self) -> MappingProxyType[str, int]:
        """Highest total PSS seen for each role, each at its own moment."""
        with self._lock:
            return MappingProxyType(dict(self._peak_by_role))

    def __enter__(self) -> PeakMemory:
        self._stop.clear()
        self.baseline = self.sample()
        self._thread = threading.Thread(target=self._run, name="loadwise-peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._try_sample()

    def sample(self) -> TreeMemory:
        """Take one snapshot now and fold it into the peaks."""
        snapshot = process_memory(self.pid, self.include_children)
        with self._lock:
            self.samples += 1
            if self.peak is None or snapshot.total_pss > self.peak.total_pss:
                self.peak = snapshot
            self.peak_rss = max(self.peak_rss, snapshot.total_rss)
            for role in {p.role for p in snapshot.processes}:
                pss = snapshot.role_pss(role)
                self._peak_by_role[role] = max(self._peak_by_role.get(role, 0), pss)
        return snapshot

    def _run(self) -> None:
        pause = self.interval
        while not self._stop.wait(pause):
            started = time.thread_time()  # CPU time: a busy machine does not slow sampling
            if not self._try_sample():
                return
            busy = time.thread_time() - started
            pause = max(self.interval, self._idle_per_busy * busy)

    def _try_sample(self) -> bool:
        """Sample; if the watched process itself is gone, keep the error and stop."""
        try:
            self.sample()
        except (ConfigError, psutil.Error) as error:
            self.error = error
            return False
        return True

    def summary(self) -> dict[str, Any]:
        """Baseline, peaks and sample count as plain numbers (bytes), e.g. for JSON."""
        return {
            "baseline_pss": self.baseline_pss,
            "peak_pss": self.peak_pss,
            "peak_rss": self.peak_rss,
            "peak_by_role": dict(self.peak_by_role),
            "samples": self.samples,
        }


def _process(pid: int | None) -> psutil.Process:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        raise ConfigError(f"`pid` must be a running process. Found: {pid}.") from None


def _children(root: psutil.Process) -> list[psutil.Process]:
    try:
        return list(root.children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def _read(proc: psutil.Process, role: str) -> tuple[ProcessMemory, bool] | None:
    """(memory, PSS is exact) of ``proc``, or None if it is gone or cannot be read."""
    rollup = _rollup(proc.pid)
    if rollup is not None:
        return _from_rollup(proc.pid, role, rollup), True
    try:
        info = proc.memory_full_info()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        if role == "main":
            raise ConfigError(f"no permission to read the memory of process {proc.pid}.") from None
        return None
    uss = int(getattr(info, "uss", info.rss))
    pss = getattr(info, "pss", None)
    memory = ProcessMemory(
        proc.pid, role, int(info.rss), int(info.rss if pss is None else pss), uss,
        int(info.rss) - uss, int(getattr(info, "swap", 0)),
    )  # fmt: skip
    return memory, pss is not None


def _rollup(pid: int) -> dict[str, int] | None:
    """The sizes in ``/proc/<pid>/smaps_rollup`` in bytes, or None if it cannot be read."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_bytes()
    except OSError:
        return None
    sizes: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(b" ")
        name = _ROLLUP_KEYS.get(key)
        if name is not None:
            sizes[name] = sizes.get(name, 0) + int(rest.split()[0]) * 1024
    return sizes if "rss" in sizes and "pss" in sizes else None


def _from_rollup(pid: int, role: str, sizes: dict[str, int]) -> ProcessMemory:
    rss, uss = sizes["rss"], sizes.get("private", 0)
    return ProcessMemory(
        pid=pid,
        role=role,
        rss=rss,
        pss=sizes["pss"],
        uss=uss,
        shared=rss - uss,
        swap=sizes.get("swap", 0),
        pss_anon=sizes.get("pss_anon"),
        pss_file=sizes.get("pss_file"),
        pss_shmem=sizes.get("pss_shmem"),
    )
