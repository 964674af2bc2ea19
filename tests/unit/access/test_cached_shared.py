"""Cached mode's one cache for the main process and its workers: the same batches as lazy
mode, one process's decodes are the others' hits, concurrent fills stay correct, and
nothing is left behind by closing or dying."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
from multiprocessing import resource_tracker
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import loadwise
from loadwise.access.cached import CachedDataset
from loadwise.testing import make_photo_folder

SIZE = 48
IMAGE_BYTES = SIZE * SIZE * 3


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 RGB 48x48 JPEGs in 2 classes, packed encoded (810 KiB decoded)."""
    root = tmp_path_factory.mktemp("cached")
    folder = make_photo_folder(root / "photos", classes=2, per_class=60, size=SIZE, seed=3)
    loadwise.pack(folder.root, root / "jpegs", encoded=True, progress=False)
    return root / "jpegs"


@pytest.fixture(scope="module")
def mixed_sizes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 PNGs and JPEGs of three sizes, packed encoded: decoded batches come as lists."""
    root = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(5)
    for i in range(30):
        folder = root / "photos" / f"class_{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        height, width = [(20, 24), (32, 16), (20, 24)][i % 3]
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.{'png' if i % 2 else 'jpg'}")
    loadwise.pack(root / "photos", root / "mixed", encoded=True, progress=False)
    return root / "mixed"


def assert_same(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for name, value in want.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(got[name], value), name
        elif value and isinstance(value[0], torch.Tensor):  # images of different sizes
            assert len(got[name]) == len(value)
            assert all(torch.equal(a, b) for a, b in zip(got[name], value, strict=True)), name
        else:
            assert got[name] == value, name


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("cache_bytes", [1 << 20, 40 * IMAGE_BYTES, 0])  # all, a third, none
def test_loader_batches_equal_lazy(jpegs: Path, workers: int, cache_bytes: int) -> None:
    with (
        loadwise.open(jpegs, "cached", cache_bytes=cache_bytes) as cached,
        loadwise.open(jpegs, "lazy") as lazy,
    ):
        loader = loadwise.loader(cached, 16, num_workers=workers, seed=1)
        for _epoch in range(2):
            for batch in loader:
                assert_same(batch, lazy.get_batch(batch["index"].numpy()))
        assert cached.cache.bytes <= cache_bytes
        assert cached.cache.hits + cached.cache.misses == 2 * len(cached)
        # filled in epoch 1, each cached sample is a hit once in epoch 2
        assert (
            cached.cache.hits == len(cached.cache) == min(len(cached), cache_bytes // IMAGE_BYTES)
        )


def test_batches_mixing_hits_misses_and_repeats(jpegs: Path) -> None:
    with (
        loadwise.open(jpegs, "cached", cache_bytes=10 * IMAGE_BYTES) as cached,
        loadwise.open(jpegs, "lazy") as lazy,
    ):
        for idx in ([3, 5], [5, 7, 3, 3, 90, -1], list(range(20)), [0, 19, 3, 0]):
            assert_same(cached.get_batch(idx), lazy.get_batch(idx))
        assert len(cached.cache) == 10 and cached.cache.bytes == 10 * IMAGE_BYTES
        assert cached.cache.hits == 0 + 3 + 3 + 3  # full after the third batch: 19 is not kept


def test_images_of_different_sizes_come_as_lists(mixed_sizes: Path) -> None:
    with (
        loadwise.open(mixed_sizes, "cached", cache_bytes=12 * 32 * 24 * 3) as cached,
        loadwise.open(mixed_sizes, "lazy") as lazy,
    ):
        for idx in ([0, 1, 2], [2, 0, 3, 4], list(range(30)), [1, 4], [0, 2]):
            assert_same(cached.get_batch(idx), lazy.get_batch(idx))
        assert 0 < len(cached.cache) < 30 and cached.cache.hits > 0
        shapes = [tuple(image.shape) for image in lazy.get_batch(range(5))["image"]]
        alike = [i for i in range(5) if shapes[i] == shapes[4]]
        got = cached.get_batch(alike)  # all cached, one size, at offsets of several sizes
        assert isinstance(got["image"], torch.Tensor) and len(alike) > 1
        assert_same(got, lazy.get_batch(alike))


def _read(path: Path, dataset: CachedDataset, indices: list[int], start: object) -> None:
    """In a child process: wait for ``start``, then read ``indices`` in batches of 7 (compared
    with numpy: torch's thread pool is not safe to use in a forked child)."""
    if start is not None:
        start.wait()  # type: ignore[attr-defined]
    lazy = loadwise.open(path, "lazy")
    for i in range(0, len(indices), 7):
        part = indices[i : i + 7]
        got, want = dataset.get_batch(part)["image"], lazy.get_batch(part)["image"]
        if not np.array_equal(got.numpy(), want.numpy()):
            os._exit(3)


def _run(context: str, path: Path, dataset: CachedDataset, *reads: list[int]) -> None:
    ctx = multiprocessing.get_context(context)
    tracker_was_off = resource_tracker._resource_tracker._fd is None
    start = ctx.Barrier(len(reads)) if len(reads) > 1 else None
    children = [ctx.Process(target=_read, args=(path, dataset, r, start)) for r in reads]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    if context == "spawn" and tracker_was_off:  # spawning started it: other tests count children
        resource_tracker._resource_tracker._stop()


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_a_sample_one_process_decoded_is_a_hit_for_another(jpegs: Path, context: str) -> None:
    with loadwise.open(jpegs, "cached") as ds:
        _run(context, jpegs, ds, list(range(20)))
        assert (ds.cache.hits, ds.cache.misses, len(ds.cache)) == (0, 20, 20)
        _run(context, jpegs, ds, list(range(10, 30)))
        assert (ds.cache.hits, ds.cache.misses, len(ds.cache)) == (10, 30, 30)
        ds.get_batch(list(range(30)))  # and for the process that opened it
        assert ds.cache.hits == 40


def test_workers_hit_what_other_workers_decoded(jpegs: Path) -> None:
    with loadwise.open(jpegs, "cached") as ds:
        loader = loadwise.loader(ds, 10, num_workers=2, seed=0)
        for _epoch in range(2):
            for _ in loader:
                pass
        # per-process caches would hit only the half each worker decoded itself
        assert (ds.cache.misses, ds.cache.hits) == (len(ds), len(ds))


def test_concurrent_fills_from_two_processes(jpegs: Path) -> None:
    order = np.random.default_rng(2).permutation(len(loadwise.open(jpegs, "lazy"))).tolist()
    with loadwise.open(jpegs, "cached", cache_bytes=100 * IMAGE_BYTES) as ds:
        _run("fork", jpegs, ds, order, order[::-1], order[1::2] + order[::2])
        n = len(ds)
        assert ds.cache.bytes == 100 * IMAGE_BYTES and len(ds.cache) == 100  # no double slots
        with loadwise.open(jpegs, "lazy") as lazy:
            assert_same(ds.get_batch(order), lazy.get_batch(order))
        assert ds.cache.hits + ds.cache.misses == 4 * n


def test_a_process_dying_inside_the_lock_does_not_block_the_others(jpegs: Path) -> None:
    with loadwise.open(jpegs, "cached") as ds:
        ds.get_batch([0, 1])
        child = os.fork()
        if child == 0:
            with ds.cache._locked():
                os.kill(os.getpid(), signal.SIGKILL)
        os.waitpid(child, 0)
        ds.get_batch([1, 2])  # the kernel released the dead process's lock
        assert ds.cache.hits == 1


def test_pickled_copy_gets_its_own_empty_cache(jpegs: Path) -> None:
    with loadwise.open(jpegs, "cached", cache_bytes=1 << 20) as ds:
        ds.get_batch([0, 1])
        clone = pickle.loads(pickle.dumps(ds))
        assert len(clone.cache) == 0 and clone.cache.limit == 1 << 20
        assert torch.equal(clone.get_batch([1])["image"], ds.get_batch([1])["image"])
        assert (clone.cache.hits, ds.cache.hits) == (0, 1)
        clone.close()


def _cache_maps(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/maps") as maps:
        return sum("loadwise-cache" in line for line in maps)


def test_close_and_death_leave_nothing_behind(jpegs: Path) -> None:
    shm_before = set(os.listdir("/dev/shm"))
    fds_before, maps_before = len(os.listdir("/proc/self/fd")), _cache_maps()
    ds = loadwise.open(jpegs, "cached")
    ds.get_batch(list(range(20)))
    assert _cache_maps() == maps_before + 1
    ds.close()
    assert _cache_maps() == maps_before and len(os.listdir("/proc/self/fd")) <= fds_before
    assert ds.cache.misses == 20  # counters stay readable once closed
    ctx = multiprocessing.get_context("fork")
    dying = ctx.Process(target=_open_and_die, args=(jpegs,))
    dying.start()
    dying.join(60)
    assert dying.exitcode == -signal.SIGKILL
    assert set(os.listdir("/dev/shm")) <= shm_before


def _open_and_die(path: Path) -> None:
    ds = loadwise.open(path, "cached")
    ds.get_batch(list(range(20)))
    os.kill(os.getpid(), signal.SIGKILL)
