"""Threads per batch (shared among DataLoader workers), and large gathers shared out among
them giving exactly ``source[rows]`` in every mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import loadwise
from loadwise.access import parallel
from loadwise.errors import ConfigError


@pytest.mark.parametrize("threads", ["1", "3"])
def test_take_rows_is_fancy_indexing(threads: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parallel.THREADS_ENV, threads)
    monkeypatch.setattr(parallel, "PARALLEL_BYTES", 1)  # every gather takes the threaded path
    source = np.random.default_rng(0).integers(0, 1 << 30, (500, 3, 7), dtype=np.int64)
    rows = np.random.default_rng(1).integers(0, 500, 1001)
    np.testing.assert_array_equal(parallel.take_rows(source, rows), source[rows])
    assert parallel.take_rows(source, rows[:0]).shape == (0, 3, 7)


@pytest.mark.parametrize("mode", ["eager", "lazy"])
def test_threaded_batches_match_single_threaded(
    arrays_packed: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx = np.random.default_rng(2).integers(0, 300, 257)
    with loadwise.open(arrays_packed, mode) as dataset:
        monkeypatch.setenv(parallel.THREADS_ENV, "1")
        want = dataset.get_batch(idx)
        monkeypatch.setenv(parallel.THREADS_ENV, "2")
        monkeypatch.setattr(parallel, "PARALLEL_BYTES", 1)
        got = dataset.get_batch(idx)
    for name, value in want.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(got[name], value), name
        else:
            assert got[name] == value, name


def test_thread_count_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parallel.THREADS_ENV, "0")
    with pytest.raises(ConfigError, match=parallel.THREADS_ENV):
        parallel.batch_threads()


class _ThreadsSeen(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> int:
        return parallel.batch_threads()


def test_workers_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(parallel.THREADS_ENV, raising=False)
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    assert parallel.batch_threads() == 4
    seen = [int(x) for x in DataLoader(_ThreadsSeen(), batch_size=None, num_workers=2)]
    assert seen == [2, 2]


def test_a_view_of_overlapping_rows_is_not_copied_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lazy mode's rows view spans terabytes virtually; ``np.take`` would copy it first."""
    monkeypatch.setenv(parallel.THREADS_ENV, "2")
    monkeypatch.setattr(parallel, "PARALLEL_BYTES", 1)
    flat = np.arange(1 << 22, dtype=np.uint8)
    rows = np.lib.stride_tricks.as_strided(flat, shape=(flat.size - 4095, 4096), strides=(1, 1))
    assert rows.nbytes > 10 << 30  # over 10 GB if copied
    offsets = np.array([0, 5, 1 << 20, flat.size - 4096])
    got = parallel.take_rows(rows, offsets)
    np.testing.assert_array_equal(got, np.stack([flat[o : o + 4096] for o in offsets]))
