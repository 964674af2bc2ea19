"""Eager data lives once in RAM: forked workers share its pages, spawned ones map it shared."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import subprocess
import sys
from multiprocessing import resource_tracker
from pathlib import Path

import numpy as np
import psutil
import pytest

import loadwise
from loadwise.access.eager import EagerDataset

SAMPLES, SHAPE = 1200, (1, 256, 256)  # 75 MiB of uint8 images
ROOT = Path(__file__).parents[3]


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (SAMPLES, *SHAPE), dtype=np.uint8)


@pytest.fixture(scope="module")
def packed(images: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("eager") / "d"
    loadwise.pack({"image": images}, path, shard_bytes=16 * 2**20, progress=False)
    return path


def workers_private(path: str) -> list[int]:
    """Each worker's private bytes (USS) after two checked epochs over the eager data."""
    ds = loadwise.open(path, "eager")
    assert not any(t.is_shared() for t in ds._tensors.values())  # private: huge pages
    images = ds.get_batch(np.arange(len(ds)))["image"].numpy()
    loader = loadwise.loader(ds, 64, num_workers=2, seed=0)
    seen = 0
    for _epoch in range(2):
        for batch in loader:
            seen += len(batch["index"])
            assert np.array_equal(batch["image"].numpy(), images[batch["index"].numpy()])
    workers = psutil.Process().children()
    assert len(workers) == 2 and seen == 2 * SAMPLES
    assert not any(t.is_shared() for t in ds._tensors.values())  # fork never pickled it
    return [w.memory_full_info().uss for w in workers]


def test_forked_workers_share_the_private_pages(packed: Path, images: np.ndarray) -> None:
    """Measured in a fresh interpreter: workers forked from this test process would copy
    (as their garbage collector touches it) whatever heap earlier tests left here."""
    code = (
        "import json, sys; from tests.unit.access.test_eager_memory import workers_private; "
        "print(json.dumps(workers_private(sys.argv[1])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(packed)], capture_output=True, text=True, cwd=ROOT,
        timeout=100,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    private = json.loads(done.stdout.splitlines()[-1])
    assert max(private) < images.nbytes / 3, f"workers hold private copies: {private}"


def test_pickling_moves_the_data_into_shared_memory_once(packed: Path, images: np.ndarray) -> None:
    ds = loadwise.open(packed, "eager")
    before = ds.get_batch([5, 1])["image"]
    copy = pickle.loads(pickle.dumps(ds))
    assert all(t.is_shared() for t in ds._tensors.values())
    tensors = dict(ds._tensors)
    ds.share_memory()  # already shared: nothing moves
    assert all(ds._tensors[k] is t for k, t in tensors.items())
    for dataset in (ds, copy):
        assert np.array_equal(dataset.get_batch([5, 1])["image"].numpy(), before.numpy())
        assert np.array_equal(dataset.get_batch([7])["image"].numpy(), images[[7]])


def _check_in_child(dataset: EagerDataset, expected: np.ndarray) -> None:
    got = dataset.get_batch(list(range(0, SAMPLES, 97)))["image"].numpy()
    raise SystemExit(0 if np.array_equal(got, expected) else 3)


def test_a_spawned_process_reads_the_shared_copy(packed: Path, images: np.ndarray) -> None:
    ds = loadwise.open(packed, "eager")
    tracker_was_off = resource_tracker._resource_tracker._fd is None
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_check_in_child, args=(ds, images[::97]))
    child.start()
    child.join(120)
    if tracker_was_off:  # spawning started it: other tests count this process's children
        resource_tracker._resource_tracker._stop()
    assert child.exitcode == 0
    assert all(t.is_shared() for t in ds._tensors.values())
