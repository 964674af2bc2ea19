"""After SIGKILL of a run using eager shared memory and workers: no orphans, no stale segments.

Eager storage and torch's batch transfer use the ``file_descriptor`` sharing strategy: every
segment is unlinked from ``/dev/shm`` as soon as it is created and lives only while a
process holds its descriptor, so a killed run leaves nothing to reclaim; workers notice
their parent is gone and exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

import loadwise

RUN = """
import sys, time, loadwise
data = loadwise.open(sys.argv[1], "eager")
loader = loadwise.loader(data, 16, num_workers=2)
while True:
    for batch in loader:
        print("batch", flush=True)
        time.sleep(0.01)
"""


def _shm() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs /dev/shm (Linux)")
def test_killed_run_leaves_no_orphans_and_no_shared_memory(tmp_path: Path) -> None:
    dest = tmp_path / "d"
    loadwise.pack({"x": np.zeros((2_000, 1_000), np.uint8)}, dest, progress=False)
    before = _shm()
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, str(dest)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for _ in range(5):
        assert proc.stdout.readline().startswith("batch")
    workers = psutil.Process(proc.pid).children()
    assert len(workers) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    gone, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive, f"orphaned workers: {[p.pid for p in alive]}"
    time.sleep(0.2)
    assert _shm() - before == set()
