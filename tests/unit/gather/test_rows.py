"""Threads per batch (shared among DataLoader workers), and large gathers on torch's threads
giving exactly ``source[rows]`` in every mode."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import loadwise
from loadwise.errors import ConfigError
from loadwise.gather import rows as gather_rows
from loadwise.gather import threads as pool


@pytest.fixture
def torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("dtype", ["int64", "uint8", "float16", "bool", "uint16"])
def test_take_rows_is_fancy_indexing(
    threads: int, dtype: str, torch_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.set_num_threads(threads)
    monkeypatch.setattr(gather_rows, "TORCH_GATHER_BYTES", 1)  # every gather takes torch's path
    source = np.random.default_rng(0).integers(0, 2, (500, 3, 7)).astype(dtype)  # uint16: numpy
    rows = np.random.default_rng(1).integers(0, 500, 1001)
    got = gather_rows.take_rows(source, rows)
    assert got.dtype == source.dtype
    np.testing.assert_array_equal(got, source[rows])
    assert gather_rows.take_rows(source, rows[:0]).shape == (0, 3, 7)


def test_large_gathers_reuse_a_freed_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    source = np.random.default_rng(0).integers(0, 255, (2000, 4096), dtype=np.uint8)
    rows = np.arange(1500)[::-1].copy()  # 6 MB: pooled
    first = gather_rows.take_rows(source, rows)
    where = first.__array_interface__["data"][0]
    np.testing.assert_array_equal(first, source[rows])
    del first
    again = gather_rows.take_rows(source, rows[::-1].copy())
    assert again.__array_interface__["data"][0] == where
    np.testing.assert_array_equal(again, source[rows[::-1]])


@pytest.mark.parametrize("mode", ["eager", "lazy"])
def test_torch_gathers_match_numpy_gathers(
    arrays_packed: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx = np.random.default_rng(2).integers(0, 300, 257)
    with loadwise.open(arrays_packed, mode) as dataset:
        monkeypatch.setattr(gather_rows, "TORCH_GATHER_BYTES", 1 << 60)  # numpy gathers only
        want = dataset.get_batch(idx)
        monkeypatch.setattr(gather_rows, "TORCH_GATHER_BYTES", 1)
        got = dataset.get_batch(idx)
    for name, value in want.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(got[name], value), name
        else:
            assert got[name] == value, name


def test_thread_count_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pool.THREADS_ENV, "0")
    with pytest.raises(ConfigError, match=pool.THREADS_ENV):
        pool.batch_threads()


class _ThreadsSeen(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> int:
        return pool.batch_threads()


def test_workers_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pool.THREADS_ENV, raising=False)
    monkeypatch.setattr(pool.os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    assert pool.batch_threads() == 4
    seen = [int(x) for x in DataLoader(_ThreadsSeen(), batch_size=None, num_workers=2)]
    assert seen == [2, 2]


def test_a_view_of_overlapping_rows_is_not_copied_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lazy mode's rows view spans terabytes virtually; ``np.take`` would copy it first."""
    monkeypatch.setattr(gather_rows, "TORCH_GATHER_BYTES", 1)
    flat = np.arange(1 << 22, dtype=np.uint8)
    rows = np.lib.stride_tricks.as_strided(flat, shape=(flat.size - 4095, 4096), strides=(1, 1))
    assert rows.nbytes > 10 << 30  # over 10 GB if copied
    offsets = np.array([0, 5, 1 << 20, flat.size - 4096])
    got = gather_rows.take_rows(rows, offsets)
    np.testing.assert_array_equal(got, np.stack([flat[o : o + 4096] for o in offsets]))


def _gather_in_child(source: np.ndarray, rows: np.ndarray) -> None:
    raise SystemExit(0 if np.array_equal(gather_rows.take_rows(source, rows), source[rows]) else 3)


def test_a_forked_child_gathers_without_hanging(torch_threads: None) -> None:
    """torch's OpenMP threads stay in the parent: a forked child on 2 threads would hang."""
    torch.set_num_threads(2)
    source = np.random.default_rng(0).integers(0, 255, (3000, 4096), dtype=np.uint8)
    rows = np.random.default_rng(1).integers(0, 3000, 1500)
    for _ in range(3):
        gather_rows.take_rows(source, rows)  # the parent's OpenMP team is up
    child = multiprocessing.get_context("fork").Process(
        target=_gather_in_child, args=(source, rows)
    )
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0
