"""Cached mode's memory with DataLoader workers: one budget for the whole process tree, and
no growth from epoch to epoch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

import loadwise
from loadwise.testing import make_photo_folder

SIZE, IMAGES = 128, 320
DECODED = IMAGES * SIZE * SIZE * 3  # 15.7 MB
CACHE = DECODED // 2
MARGIN = 4 << 20  # worker heaps and batches in flight vary by a few MB between runs
ROOT = Path(__file__).parents[3]


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cached-memory")
    folder = make_photo_folder(root / "photos", classes=2, per_class=IMAGES // 2, size=SIZE, seed=4)
    loadwise.pack(folder.root, root / "jpegs", encoded=True, progress=False)
    return root / "jpegs"


def tree_memory() -> int:
    """PSS of this process and its children without file-backed pages (shared libraries,
    shard maps: page cache the kernel can drop)."""
    total = 0
    me = psutil.Process()
    for process in [me, *me.children(recursive=True)]:
        with open(f"/proc/{process.pid}/smaps_rollup") as rollup:
            fields = dict(line.split()[:2] for line in rollup if line.startswith("Pss"))
        total += (int(fields["Pss:"]) - int(fields["Pss_File:"])) * 1024
    return total


def epoch_ends(path: Path | str, cache_bytes: int, epochs: int) -> list[int]:
    """Tree memory after each epoch, persistent workers waiting for the next."""
    with loadwise.open(path, "cached", cache_bytes=cache_bytes) as ds:
        loader = loadwise.loader(ds, 32, num_workers=2, seed=0)
        ends = []
        for _epoch in range(epochs):
            for _ in loader:
                pass
            ends.append(tree_memory())
        if cache_bytes:
            assert ds.cache.bytes <= cache_bytes and len(ds.cache) >= IMAGES // 2 - 1
            assert ds.cache.hits >= (epochs - 1) * len(ds.cache)  # workers share the hits
        del loader
    return ends


def measured_apart(path: Path, cache_bytes: int, epochs: int) -> list[int]:
    """``epoch_ends`` in a fresh interpreter: workers forked from this test process would
    share (and, as their garbage collector touches it, copy) whatever heap earlier tests
    left here, which made the figures depend on the tests that ran before."""
    code = (
        "import json, sys; from tests.unit.access.test_cached_memory import epoch_ends; "
        "print(json.dumps(epoch_ends(*sys.argv[1:2], *map(int, sys.argv[2:]))))"
    )
    args = [sys.executable, "-c", code, str(path), str(cache_bytes), str(epochs)]
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=100)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_two_workers_hold_one_budget_and_do_not_grow(jpegs: Path) -> None:
    idle = measured_apart(jpegs, 0, 1)[0]  # the same loader with nothing cached
    first, second, third = measured_apart(jpegs, CACHE, 3)
    mib = [round((m - idle) / 2**20, 1) for m in (first, second, third)]
    assert third - idle <= CACHE + MARGIN, f"MiB over idle per epoch: {mib}"
    assert third - second <= 0.02 * second, f"the tree grew: {mib}"  # the benchmark's < 2%
