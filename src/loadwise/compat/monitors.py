"""``MemoryMonitor`` and ``DataLoaderPerformanceMonitor``: the documents' monitor names.

Same methods and result keys as the documents promise, measured the loadwise way: memory
is also reported as PSS of this process and its workers (shared pages counted once), and
available memory respects cgroup limits. For a full report use ``loadwise.monitor(loader)``.
"""

from __future__ import annotations

import time
from typing import Any

import psutil

from loadwise.access.budget import available_memory
from loadwise.monitoring.memory import process_memory

GiB = 2**30


class MemoryMonitor:
    """Records system memory on each ``update()``; ``get_memory_stats()`` reads it now."""

    def __init__(self) -> None:
        self.memory_usage: list[dict[str, float]] = []
        self.monitoring = False

    def start_monitoring(self) -> None:
        """Start (or restart) recording."""
        self.monitoring, self.memory_usage = True, []

    def update(self) -> None:
        """Record one reading (timestamp, used, available, percent) if monitoring."""
        if self.monitoring:
            memory = psutil.virtual_memory()
            self.memory_usage.append(
                {"timestamp": time.time(), "used": float(memory.used),
                 "available": float(available_memory()), "percent": float(memory.percent)}
            )  # fmt: skip

    def get_memory_stats(self) -> dict[str, float]:
        """System ``used_gb``/``available_gb``/``percent`` plus this process tree's PSS."""
        memory, tree = psutil.virtual_memory(), process_memory()
        return {
            "used_gb": memory.used / GiB,
            "available_gb": available_memory() / GiB,
            "percent": float(memory.percent),
            "process_pss_gb": tree.total_pss / GiB,
            "workers_pss_gb": tree.role_pss("worker") / GiB,
            "peak_percent": max((u["percent"] for u in self.memory_usage), default=0.0),
        }

    def check_memory_constraint(self, required_memory: int) -> bool:
        """Whether ``required_memory`` bytes are available (cgroup limits respected)."""
        return available_memory() >= required_memory


class DataLoaderPerformanceMonitor:
    """Per-batch times, system memory and CPU, as the documents' loops call it::

    monitor.start_iteration()
    for batch in loader:
        monitor.update_batch(batch)
    monitor.get_stats()  # total_time, avg_batch_time, batches_per_second, ...
    """

    def __init__(self) -> None:
        self.iteration_start_time: float | None = None
        self.batch_times: list[float] = []
        self.memory_usage: list[float] = []
        self.cpu_usage: list[float] = []
        self._cpu_before: tuple[float, float] | None = None

    def start_iteration(self) -> None:
        """Start timing a pass (clears the previous one)."""
        self.iteration_start_time = time.perf_counter()
        self.batch_times, self.memory_usage, self.cpu_usage = [], [], []
        self._cpu_before = _cpu_times()

    def update_batch(self, batch: Any = None) -> None:
        """A batch arrived: note the time, system memory percent and CPU percent since last."""
        if self.iteration_start_time is None:
            self.start_iteration()
        self.batch_times.append(time.perf_counter())
        self.memory_usage.append(float(psutil.virtual_memory().percent))
        now = _cpu_times()
        before, self._cpu_before = self._cpu_before or now, now
        total = now[1] - before[1]
        busy = min(max((now[0] - before[0]) / total, 0.0), 1.0) if total > 0 else 0.0
        self.cpu_usage.append(100 * busy)

    def get_stats(self) -> dict[str, float]:
        """``total_time``, ``avg_batch_time``, ``batches_per_second``, ``avg_memory_usage``
        (percent of system memory), ``avg_cpu_usage`` (percent); empty before any batch.
        """
        if not self.batch_times or self.iteration_start_time is None:
            return {}
        total = time.perf_counter() - self.iteration_start_time
        times = [self.iteration_start_time, *self.batch_times]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        return {
            "total_time": total,
            "avg_batch_time": sum(gaps) / len(gaps),
            "batches_per_second": len(self.batch_times) / total if total > 0 else 0.0,
            "avg_memory_usage": sum(self.memory_usage) / len(self.memory_usage),
            "avg_cpu_usage": sum(self.cpu_usage) / len(self.cpu_usage),
        }


def _cpu_times() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine."""
    times = psutil.cpu_times()
    total = sum(times)
    return total - times.idle - getattr(times, "iowait", 0.0), total
