"""Memory and CPU of the main process and each worker, sampled at a low rate in a thread.

Each ``ResourceSample`` holds, per process, PSS/USS/RSS with PSS split into anonymous memory
(``anon``: heap, eager-mode arrays), page-cache-backed mapped files (``file``: shared libraries,
lazy-mode shards) and shared memory (``shmem``: eager arrays of spawned workers, batches),
plus the CPU it used since the previous sample.
Processes are labelled "main", "worker 0", "worker 1", ...: by the DataLoader's own worker
list when the monitor found it (``set_workers``), else by when the child started.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

from loadwise.errors import ConfigError
from loadwise.monitoring.memory import ProcessMemory, TreeMemory, process_memory


@dataclass(frozen=True)
class ProcessUse:
    """One process at one moment, in bytes; ``cpu`` in percent of one core since last seen."""

    pid: int
    role: str
    pss: int
    uss: int
    rss: int
    anon: int | None
    file: int | None
    shmem: int | None
    cpu: float


@dataclass(frozen=True)
class ResourceSample:
    """Every process of the tree at time ``t`` (``perf_counter`` seconds), and the system's."""

    t: float
    processes: tuple[ProcessUse, ...]
    system_memory_percent: float
    system_cpu_percent: float

    @property
    def total_pss(self) -> int:
        return sum(p.pss for p in self.processes)


class ResourceSampler:
    """Samples the process tree every ``interval`` seconds while started.

    Reading memory costs about 2 ms per 100 MB resident per process, and while the kernel
    walks a process's page tables that process cannot map or unmap memory (every large
    tensor allocation does): the loop stalls. So after each sample the thread waits long
    enough to keep sampling under ``max_cpu`` of the wall time (default 0.5%).
    ``sample()`` takes one now, from any thread (epoch ends use it). ``error`` keeps why
    sampling stopped, if the watched process went away.
    """

    def __init__(
        self, pid: int | None = None, *, interval: float = 0.5, max_cpu: float = 0.005
    ) -> None:
        if not interval > 0:
            raise ConfigError(f"`interval` must be positive seconds. Found: {interval!r}.")
        if not 0 < max_cpu <= 1:
            raise ConfigError(f"`max_cpu` must be in (0, 1]. Found: {max_cpu!r}.")
        self.pid, self.interval = pid, interval
        self._idle_per_busy = 1 / max_cpu - 1
        self.samples: list[ResourceSample] = []
        self.error: BaseException | None = None
        self._named: dict[str, dict[int, str]] = {}  # prefix -> pid -> label
        self._labels: dict[int, str] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._cpu: dict[int, tuple[float, float]] = {}  # pid -> (wall time, cpu seconds)
        self._system: tuple[float, float] | None = None  # (busy, total) cpu seconds
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._cost = 0.0  # wall seconds the last sample took
        self._thread: threading.Thread | None = None

    def set_workers(self, pids: Sequence[int], prefix: str = "") -> None:
        """Name these child pids ``f"{prefix}worker {i}"`` in later samples."""
        with self._lock:
            named = self._named.setdefault(prefix, {})  # last epoch's workers keep their names
            named.update({pid: f"{prefix}worker {i}" for i, pid in enumerate(pids)})
            self._labels = {pid: r for named in self._named.values() for pid, r in named.items()}

    def start(self) -> None:
        """Sample in a background thread until ``stop`` (a stopping thread is kept on)."""
        with self._lock:
            self._stopping = False
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="loadwise-monitor", daemon=True
                )
                self._thread.start()

    def stop(self, wait: bool = True) -> None:
        """Stop the thread; ``wait`` for a sample in progress (a few ms at most)."""
        with self._lock:
            self._stopping, thread = True, self._thread
        self._wake.set()
        if wait and thread is not None:
            thread.join()

    def sample(self) -> ResourceSample | None:
        """Take one sample now and keep it; None if the watched process is gone."""
        started = time.perf_counter()
        try:
            tree = process_memory(self.pid)
        except (ConfigError, psutil.Error) as error:
            self.error = error
            return None
        self._cost = time.perf_counter() - started
        with self._lock:
            roles = self._roles(tree)
            sample = ResourceSample(
                time.perf_counter(),
                tuple(self._use(p, r) for p, r in zip(tree.processes, roles, strict=True)),
                float(psutil.virtual_memory().percent),
                self._system_cpu(),
            )
            self.samples.append(sample)
        return sample

    def _run(self) -> None:
        pause = max(self.interval, self._idle_per_busy * self._cost)
        while True:
            self._wake.wait(pause)
            self._wake.clear()
            with self._lock:
                if self._stopping:
                    self._thread = None
                    return
            if self.sample() is None:
                with self._lock:
                    self._thread = None
                return
            pause = max(self.interval, self._idle_per_busy * self._cost)

    def _roles(self, tree: TreeMemory) -> list[str]:
        """Known workers by their DataLoader number; other children by start order."""
        alive = {p.pid for p in tree.processes}
        for gone in set(self._procs) - alive:
            self._procs.pop(gone, None)
            self._cpu.pop(gone, None)
        for named in self._named.values():
            for gone in set(named) - alive:
                del named[gone]
        unknown = [p.pid for p in tree.processes[1:] if p.pid not in self._labels]
        if not self._labels:
            unknown.sort(key=lambda pid: (self._created(pid), pid))
            fallback = {pid: f"worker {i}" for i, pid in enumerate(unknown)}
        else:
            fallback = {pid: f"process {pid}" for pid in unknown}
        roles = ["main"]
        roles += [self._labels.get(p.pid) or fallback[p.pid] for p in tree.processes[1:]]
        return roles

    def _process(self, pid: int) -> psutil.Process | None:
        proc = self._procs.get(pid)
        if proc is None:
            try:
                proc = self._procs[pid] = psutil.Process(pid)
            except psutil.Error:
                return None
        return proc

    def _created(self, pid: int) -> float:
        proc = self._process(pid)
        try:
            return proc.create_time() if proc is not None else 0.0
        except psutil.Error:
            return 0.0

    def _use(self, memory: ProcessMemory, role: str) -> ProcessUse:
        return ProcessUse(
            pid=memory.pid, role=role, pss=memory.pss, uss=memory.uss, rss=memory.rss,
            anon=memory.pss_anon, file=memory.pss_file, shmem=memory.pss_shmem,
            cpu=self._cpu_percent(memory.pid),
        )  # fmt: skip

    def _cpu_percent(self, pid: int) -> float:
        """CPU of ``pid`` since it was last sampled (since it started, the first time)."""
        proc, wall = self._process(pid), time.time()
        if proc is None:
            return 0.0
        try:
            times = proc.cpu_times()
            used = times.user + times.system
            since, before = self._cpu.get(pid) or (proc.create_time(), 0.0)
        except psutil.Error:
            return 0.0
        self._cpu[pid] = (wall, used)
        return 100 * (used - before) / max(wall - since, 1e-3)

    def _system_cpu(self) -> float:
        """Whole-machine CPU busy since the previous sample, percent of all cores."""
        times = psutil.cpu_times()
        total = sum(times)
        busy = total - times.idle - getattr(times, "iowait", 0.0)
        before, self._system = self._system, (busy, total)
        if before is None or total <= before[1]:
            return 0.0
        return 100 * min(max((busy - before[0]) / (total - before[1]), 0.0), 1.0)
