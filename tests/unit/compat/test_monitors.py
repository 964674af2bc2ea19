"""``MemoryMonitor``, ``DataLoaderPerformanceMonitor`` and ``EfficientDataLoader.get_stats``
with monitoring on: the documents' keys, filled with measured values."""

from __future__ import annotations

import time

import torch
from torch.utils.data import TensorDataset

from loadwise.access.budget import available_memory
from loadwise.compat import DataLoaderConfig, EfficientDataLoader
from loadwise.compat.monitors import DataLoaderPerformanceMonitor, MemoryMonitor


def test_memory_monitor_records_and_checks_constraints() -> None:
    monitor = MemoryMonitor()
    monitor.update()
    assert monitor.memory_usage == []  # not started yet
    monitor.start_monitoring()
    monitor.update()
    monitor.update()
    assert len(monitor.memory_usage) == 2
    assert set(monitor.memory_usage[0]) == {"timestamp", "used", "available", "percent"}
    stats = monitor.get_memory_stats()
    assert stats["used_gb"] > 0 and stats["available_gb"] > 0 and 0 < stats["percent"] < 100
    assert stats["process_pss_gb"] > 0.01
    assert monitor.check_memory_constraint(1024)
    assert not monitor.check_memory_constraint(2 * available_memory() + 2**30)


def test_performance_monitor_times_batches() -> None:
    monitor = DataLoaderPerformanceMonitor()
    assert monitor.get_stats() == {}
    monitor.start_iteration()
    for batch in range(5):
        time.sleep(0.01)
        monitor.update_batch(batch)
    stats = monitor.get_stats()
    assert set(stats) == {"total_time", "avg_batch_time", "batches_per_second",
                          "avg_memory_usage", "avg_cpu_usage"}  # fmt: skip
    assert stats["total_time"] >= 0.05 and 0.009 <= stats["avg_batch_time"] < 0.05
    assert 5 / stats["total_time"] == stats["batches_per_second"]
    assert 0 < stats["avg_memory_usage"] < 100 and 0 <= stats["avg_cpu_usage"] <= 100


def test_efficient_loader_stats_with_monitoring() -> None:
    data = TensorDataset(torch.arange(64), torch.arange(64))
    loader = EfficientDataLoader(data, DataLoaderConfig(batch_size=8, enable_monitoring=True))
    for _ in range(2):
        for _ in loader:
            time.sleep(0.002)
    stats = loader.get_stats()
    assert stats["batches_per_second"] > 0 and stats["total_time"] >= 16 * 0.002
    assert stats["avg_batch_time"] == stats["total_time"] / 16
    assert 0 <= stats["data_wait_fraction"] < 1 and stats["peak_pss"] > 0
    assert 0 < stats["avg_memory_usage"] < 100 and stats["diagnosis"]
    assert [e["batches"] for e in stats["epochs"]] == [8, 8]
