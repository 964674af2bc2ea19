"""``process_memory`` and ``PeakMemory`` against real forked processes, as DataLoader makes.

Linux only: PSS comes from ``/proc/<pid>/smaps_rollup``. Children are forked (what a
DataLoader does on Linux) and told what to allocate or touch over a pipe.
"""

from __future__ import annotations

import mmap
import multiprocessing
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from loadwise.errors import ConfigError
from loadwise.monitoring import PeakMemory, TreeMemory, process_memory

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux /proc/<pid>/smaps_rollup"
)

MiB = 2**20
PAGE = mmap.PAGESIZE


def _serve(conn: Connection, mapping: mmap.mmap | None) -> None:
    """The child: allocate, free, spike or touch the shared mapping when asked, then say ok."""
    held: list[bytearray] = []
    while (command := conn.recv())[0] != "exit":
        if command[0] == "alloc":
            held.append(bytearray(b"\x01") * command[1])
        elif command[0] == "spike":
            spike = bytearray(b"\x01") * command[1]
            time.sleep(command[2])
            del spike
        elif command[0] == "touch" and mapping is not None:
            sum(mapping[i] for i in range(0, len(mapping), PAGE))
        conn.send("ok")


class Child:
    """A forked child process that does one thing per ``ask`` and answers when done."""

    def __init__(self, mapping: mmap.mmap | None = None) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, mapping), daemon=True)
        with warnings.catch_warnings():  # Python >= 3.12 warns on fork with threads running
            warnings.simplefilter("ignore", DeprecationWarning)
            self.process.start()
        self.ask("ping")

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def ask(self, *command: Any) -> None:
        self.conn.send(command)
        assert self.conn.recv() == "ok"

    def close(self) -> None:
        if self.process.is_alive():
            self.conn.send(("exit",))
        self.process.join(10)


@pytest.fixture
def child() -> Iterator[Child]:
    proc = Child()
    yield proc
    proc.close()


def _worker(tree: TreeMemory, pid: int) -> int:
    return next(p.pss for p in tree.processes if p.pid == pid)


def test_one_process_snapshot_is_consistent() -> None:
    tree = process_memory(include_children=False)
    (main,) = tree.processes
    assert main.role == "main" and tree.exact_pss
    assert 0 < main.uss <= main.pss <= main.rss
    assert main.shared == main.rss - main.uss
    assert (tree.total_pss, tree.total_rss, tree.total_uss) == (main.pss, main.rss, main.uss)


def test_child_allocation_shows_in_tree_pss(child: Child) -> None:
    size = 200 * MiB
    before = process_memory()
    assert child.pid in {p.pid for p in before.workers}
    child.ask("alloc", size)
    after = process_memory()
    grown = after.total_pss - before.total_pss
    assert 0.9 * size <= grown <= size + 30 * MiB
    assert _worker(after, child.pid) - _worker(before, child.pid) >= 0.9 * size
    assert after.role_pss("worker") >= 0.9 * size


def test_shared_mapping_is_counted_once_in_pss_twice_in_rss() -> None:
    size = 128 * MiB
    mapping = mmap.mmap(-1, size)  # MAP_SHARED: parent and child see the same pages
    chunk = b"\x01" * MiB
    for offset in range(0, size, MiB):
        mapping[offset : offset + MiB] = chunk
    proc = Child(mapping)
    try:
        before = process_memory()
        proc.ask("touch")
        after = process_memory()
    finally:
        proc.close()
        mapping.close()
    assert abs(after.total_pss - before.total_pss) < 0.1 * size
    assert after.total_rss - after.total_pss >= 0.9 * size
    main, worker = after.processes[0], next(p for p in after.workers if p.pid == proc.pid)
    assert main.rss >= size and worker.rss >= size
    if worker.pss_shmem is not None:
        assert abs(worker.pss_shmem - size / 2) < 0.1 * size


def test_peak_memory_catches_a_short_spike(child: Child) -> None:
    size = 150 * MiB
    # max_cpu=1: sample every interval whatever a snapshot costs; a big test process (late in
    # the suite) makes snapshots slow, and the default throttle could then skip the spike
    with PeakMemory(interval=0.02, max_cpu=1.0) as memory:
        child.ask("spike", size, 0.3)
    after = process_memory()
    assert memory.error is None and memory.samples >= 3
    assert memory.peak_pss - memory.baseline_pss >= 0.8 * size
    assert memory.peak_by_role["worker"] >= 0.8 * size
    assert memory.peak_rss >= memory.peak_pss
    assert after.total_pss < memory.peak_pss - 0.5 * size


def test_peak_memory_survives_a_worker_exiting(child: Child) -> None:
    with PeakMemory(interval=0.01) as memory:
        time.sleep(0.05)
        child.close()
        time.sleep(0.05)
    assert memory.error is None
    assert child.pid not in {p.pid for p in process_memory().workers}
    assert memory.summary()["samples"] == memory.samples >= 2


def test_a_pid_that_is_gone_is_a_config_error() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with pytest.raises(ConfigError, match="running process"):
        process_memory(gone.pid)


def test_interval_and_max_cpu_are_checked() -> None:
    with pytest.raises(ConfigError, match="`interval` must be positive"):
        PeakMemory(interval=0)
    with pytest.raises(ConfigError, match=r"`max_cpu` must be in \(0, 1\]"):
        PeakMemory(max_cpu=1.5)


def test_public_names() -> None:
    import loadwise.monitoring

    assert loadwise.monitoring.__all__ == [
        "EpochSummary",
        "Monitor",
        "MonitorStats",
        "PeakMemory",
        "ProcessMemory",
        "ProcessSummary",
        "TreeMemory",
        "monitor",
        "process_memory",
        "report",
    ]
