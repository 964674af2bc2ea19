"""The contract every access mode keeps, as one helper: ``assert_mode_contract``.

Given a zero-argument callable opening a packed dataset (any mode) and the samples it must
hold (field -> one value per global index), it proves: the same ``len``; batches of any
indices (across shard boundaries, negative ones) hold the source samples; an empty batch
and an out-of-range index behave; single items equal batch rows (a streaming dataset's
iteration covers every sample once); it pickles and still reads; the same seed gives the
same order with 0 and 2 workers, each iteration a new epoch, another seed another order;
``loadwise.loader`` with workers and a plain ``DataLoader(num_workers=2)`` serve the right
samples; closing releases every file and later reads raise.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Set
from typing import Any

import numpy as np
import pytest
from tests.contracts.compare import (
    Columns,
    assert_batch_holds,
    assert_same,
    assert_sample_holds,
    column_length,
    indices_of,
    rows_of,
)
from torch.utils.data import DataLoader, IterableDataset

import loadwise
from loadwise.errors import LoadwiseError, SampleIndexError

OpenDataset = Callable[[], Any]


def assert_mode_contract(
    open_dataset: OpenDataset, expected: Columns, *, shapeless: Set[str] = frozenset()
) -> None:
    """Every check of the mode contract on the dataset ``open_dataset()`` opens.

    ``shapeless`` names fields whose row shape only their content tells (encoded images):
    an empty batch holds them as an empty list rather than an array of 0 rows.
    """
    _closes_cleanly(open_dataset)  # first: nothing of this call holds files yet
    dataset = open_dataset()
    try:
        n = column_length(expected)
        assert len(dataset) == n, f"len: {len(dataset)}, expected {n}"
        _batches_hold_the_samples(dataset, expected)
        _empty_batch_and_out_of_range(dataset, expected, shapeless)
        _single_items_match_batches(dataset, expected)
        _picklable_and_still_reads(dataset, expected)
        _same_seed_same_order(dataset, n)
        _loader_batches_hold_the_samples(dataset, expected)
        _plain_dataloader_with_workers(dataset, expected)
    finally:
        dataset.close()


def _batches_hold_the_samples(dataset: Any, expected: Columns) -> None:
    n = column_length(expected)
    indices = np.random.default_rng(3).permutation(n)[: min(n, 50)]
    what = "batch of random indices"
    assert_batch_holds(dataset.get_batch(indices), expected, indices, what)
    whole = np.arange(n)
    assert_batch_holds(dataset.get_batch(whole), expected, whole, "batch of every sample")
    batch = dataset.get_batch([-1, 0])
    assert_batch_holds(batch, expected, [n - 1, 0], "negative index counts from the end")


def _empty_batch_and_out_of_range(dataset: Any, expected: Columns, shapeless: Set[str]) -> None:
    empty = dataset.get_batch([])
    assert indices_of(empty) == [], "empty batch: `index` is not empty"
    for name, column in expected.items():
        want = [] if name in shapeless else rows_of(column, [])  # arrays: shape (0, *row)
        assert_same(empty[name], want, f"empty batch: field `{name}`")
    n = column_length(expected)
    with pytest.raises(SampleIndexError, match=f"{n}"):  # names the sample count
        dataset.get_batch([0, n])


def _single_items_match_batches(dataset: Any, expected: Columns) -> None:
    n = column_length(expected)
    if isinstance(dataset, IterableDataset):  # streaming: samples come from iterating it
        samples = list(dataset)
        seen = sorted(int(s["index"]) for s in samples)
        assert seen == list(range(n)), "iteration: does not yield every sample exactly once"
        for sample in samples:
            assert_sample_holds(sample, expected, int(sample["index"]), "iterated sample")
        return
    for i in sorted({0, n // 2, n - 1}):
        assert_sample_holds(dataset[i], expected, i, "item")
    picked = [min(4, n - 1), n - 1, 0]
    rows = dataset.__getitems__(picked)
    assert len(rows) == len(picked), f"__getitems__: {len(rows)} rows for {len(picked)} indices"
    for i, row in zip(picked, rows, strict=True):
        assert_sample_holds(row, expected, i, "__getitems__ row")


def _picklable_and_still_reads(dataset: Any, expected: Columns) -> None:
    dataset.get_batch([0])  # open storage first: pickling must not carry it along
    clone = pickle.loads(pickle.dumps(dataset))
    try:
        n = column_length(expected)
        picked = sorted({n // 3, n - 1})
        assert_batch_holds(clone.get_batch(picked), expected, picked, "unpickled copy")
    finally:
        clone.close()


def _same_seed_same_order(dataset: Any, n: int) -> None:
    orders = []
    for workers in (0, 2):
        loader = loadwise.loader(dataset, 32, seed=11, num_workers=workers)
        orders.append([_order(loader), _order(loader)])
    assert orders[0] == orders[1], "seeded order: differs between 0 and 2 workers"
    first, second = orders[0]
    assert sorted(first) == list(range(n)) == sorted(second), "seeded order: not every sample once"
    assert first != second, "seeded order: the second iteration (a new epoch) repeats the first"
    other = _order(loadwise.loader(dataset, 32, seed=12))
    assert other != first, "seeded order: another seed gives the same order"


def _order(loader: Any) -> list[int]:
    """One pass (one epoch) of ``loader``: the global index of every sample, in order."""
    return [i for batch in loader for i in indices_of(batch)]


def _loader_batches_hold_the_samples(dataset: Any, expected: Columns) -> None:
    seen = []
    for batch in loadwise.loader(dataset, 64, seed=0, num_workers=2):
        assert_batch_holds(batch, expected, indices_of(batch), "loadwise.loader, 2 workers")
        seen += indices_of(batch)
    n = column_length(expected)
    assert sorted(seen) == list(range(n)), "loadwise.loader, 2 workers: not every sample once"


def _plain_dataloader_with_workers(dataset: Any, expected: Columns) -> None:
    shuffle = None if isinstance(dataset, IterableDataset) else False
    seen = []
    for batch in DataLoader(dataset, batch_size=25, num_workers=2, shuffle=shuffle):
        assert_batch_holds(batch, expected, indices_of(batch), "plain DataLoader, 2 workers")
        seen += indices_of(batch)
    n = column_length(expected)
    assert sorted(seen) == list(range(n)), "plain DataLoader, 2 workers: not every sample once"


def _closes_cleanly(open_dataset: OpenDataset) -> None:
    before = _open_files()
    dataset = open_dataset()
    dataset.get_batch(np.arange(len(dataset)))
    dataset.close()
    assert _open_files() <= before, f"close: left files open ({_open_files()} > {before})"
    with pytest.raises(LoadwiseError, match="closed"):
        dataset.get_batch([0])


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))
