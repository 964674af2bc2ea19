"""``loadwise.monitor(loader)``: wait vs step, batches unchanged, workers' memory where it is.

Real DataLoaders with real forked workers; the slow loader sleeps in ``__getitem__``, the
slow step sleeps in the loop, so the expected wait fraction is known from the sleeps.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import loadwise.monitoring
from loadwise.errors import ConfigError
from loadwise.monitoring import Monitor, process_memory, report

MiB = 2**20
needs_proc = pytest.mark.skipif(
    not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux /proc/<pid>/smaps_rollup"
)


class Sleepy(Dataset):
    """Each item costs ``delay`` seconds: a loader that cannot keep up."""

    def __init__(self, n: int, delay: float) -> None:
        self.n, self.delay = n, delay

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        time.sleep(self.delay)
        return torch.full((16,), i, dtype=torch.int64)


class Hoarder(Dataset):
    """Each worker allocates and keeps ``size`` private bytes on its first item."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.held: bytearray | None = None

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> torch.Tensor:
        if self.held is None:
            self.held = bytearray(b"\x01") * self.size
            time.sleep(0.6)  # let the sampler see every worker holding it
        return torch.tensor([i])


def test_slow_loader_is_input_bound_fast_one_is_not() -> None:
    slow = loadwise.monitor(DataLoader(Sleepy(40, 0.005), batch_size=4))
    for _ in slow:
        time.sleep(0.001)
    fast = loadwise.monitor(DataLoader(torch.arange(400), batch_size=40))
    for _ in fast:
        time.sleep(0.02)
    slow_stats, fast_stats = slow.stats(), fast.stats()
    assert slow_stats.data_wait_fraction > 0.8
    assert slow_stats.diagnosis.startswith("input-bound")
    assert fast_stats.data_wait_fraction < 0.1
    assert fast_stats.diagnosis.startswith(("compute-bound", "partly"))
    assert slow_stats.wait_percentiles.p50 >= 4 * 0.005 * 0.9
    assert fast_stats.step_seconds >= 10 * 0.02


def test_batches_pass_unchanged_and_each_iteration_is_an_epoch() -> None:
    data = torch.arange(50)
    monitored = loadwise.monitor(DataLoader(data, batch_size=8))
    plain = list(DataLoader(data, batch_size=8))
    for _ in range(2):
        got = list(monitored)
        assert all(torch.equal(a, b) for a, b in zip(got, plain, strict=True))
    stats = monitored.stats()
    assert [e.batches for e in stats.epochs] == [7, 7]
    assert stats.samples == 100 and stats.bytes == 100 * data.element_size()
    assert stats.samples_per_second > 0 and len(monitored) == 7


def test_dict_batches_count_samples_and_bytes_and_break_ends_an_epoch() -> None:
    batches = [{"image": torch.zeros(4, 3, 8, 8, dtype=torch.uint8), "label": torch.arange(4)}] * 5
    monitored = loadwise.monitor(batches)
    for i, _ in enumerate(monitored):
        if i == 2:
            break
    stats = monitored.stats()
    assert (stats.batches, stats.samples) == (3, 12)
    assert stats.bytes == 3 * (4 * 3 * 8 * 8 + 4 * 8)
    assert len(stats.epochs) == 1


@needs_proc
def test_worker_private_memory_is_attributed_to_each_worker_not_main() -> None:
    size = 96 * MiB
    main_before = process_memory(include_children=False).processes[0].uss
    monitored = loadwise.monitor(
        DataLoader(Hoarder(size), batch_size=8, num_workers=2), interval=0.1, max_cpu=1.0
    )
    pids: set[int] = set()
    for _ in monitored:  # the monitor names workers from the DataLoader's own worker list
        pids |= set(monitored.sampler._labels)
    roles = {p.role: p for p in monitored.stats().processes}
    assert set(roles) == {"main", "worker 0", "worker 1"}
    assert {roles["worker 0"].pids[0], roles["worker 1"].pids[0]} == pids
    for worker in (roles["worker 0"], roles["worker 1"]):
        assert len(worker.pids) == 1 and worker.pids != roles["main"].pids
        assert worker.peak_uss >= 0.9 * size
        assert worker.peak_anon is None or worker.peak_anon >= 0.9 * size
    assert roles["main"].peak_uss - main_before < 0.5 * size


def test_report_text_json_round_trip_and_png(tmp_path: Path) -> None:
    monitored = loadwise.monitor(DataLoader(Sleepy(24, 0.002), batch_size=4), interval=0.05)
    for _ in range(2):
        for _ in monitored:
            time.sleep(0.002)
    stats = monitored.stats()
    assert report.read_json(report.write_json(stats, tmp_path / "s.json")) == stats
    text = report.text(stats)
    for expected in ("12 batches", "waiting for data", "main", "diagnosis:"):
        assert expected in text
    png = report.write_png(stats, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_monitor_without_loader_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no loader"):
        iter(Monitor())
    with pytest.raises(ConfigError, match="`interval` must be positive"):
        loadwise.monitor([1], interval=0)


def test_track_times_an_iterator_made_elsewhere() -> None:
    monitor = Monitor()
    assert list(monitor.track(iter([torch.zeros(2), torch.zeros(2)]))) != []
    assert monitor.stats().batches == 2


def test_the_diagnosis_does_not_suggest_the_mode_in_use(tmp_path: Path) -> None:
    images = np.zeros((512, 1, 64, 64), dtype=np.uint8)
    loadwise.pack({"image": images}, tmp_path / "d", progress=False)
    eager = loadwise.monitor(loadwise.loader(loadwise.open(tmp_path / "d", "eager"), 8))
    for _ in eager:  # no step at all: the loop can only wait for data
        pass
    lazy = loadwise.monitor(loadwise.loader(loadwise.open(tmp_path / "d", "lazy"), 8))
    for _ in lazy:
        pass
    said, lazy_said = eager.stats().diagnosis, lazy.stats().diagnosis
    assert said.startswith(("input-bound", "partly")) and "mode='eager'" not in said
    assert "in one gather each (eager, no workers)" in said
    assert "mode='eager'" in lazy_said
