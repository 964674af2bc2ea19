"""Sampling order: pure, complete, disjoint across ranks, local for streaming."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadwise.errors import ConfigError
from loadwise.sampling import batches, block_order, epoch_order, partition


@given(st.integers(0, 500), st.integers(0, 2**31), st.integers(0, 50))
def test_epoch_order_is_a_reproducible_permutation(n: int, seed: int, epoch: int) -> None:
    order = epoch_order(n, seed, epoch)
    assert sorted(order.tolist()) == list(range(n))
    assert np.array_equal(order, epoch_order(n, seed, epoch))


def test_epochs_and_seeds_differ() -> None:
    assert not np.array_equal(epoch_order(100, 0, 0), epoch_order(100, 0, 1))
    assert not np.array_equal(epoch_order(100, 0, 0), epoch_order(100, 1, 0))
    assert epoch_order(5, 0, 3, shuffle=False).tolist() == [0, 1, 2, 3, 4]


@given(st.lists(st.integers(1, 30), min_size=1, max_size=12), st.integers(1, 5), st.integers(0, 9))
def test_block_order_covers_once_and_stays_in_windows(sizes, window, epoch) -> None:
    order = block_order(sizes, 3, epoch, window)
    assert sorted(order.tolist()) == list(range(sum(sizes)))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    shard_of = np.searchsorted(starts, order, side="right") - 1
    position = 0
    while position < len(order):  # each window uses at most `window` shards
        first_window: list[int] = []
        for s in shard_of[position:].tolist():
            if s not in first_window:
                if len(first_window) == window:
                    break
                first_window.append(s)
        size = sum(sizes[s] for s in first_window)
        assert set(shard_of[position : position + size].tolist()) == set(first_window)
        position += size


@given(st.integers(0, 200), st.integers(1, 8), st.booleans())
def test_partition_is_disjoint_equal_and_complete(n: int, world: int, drop_last: bool) -> None:
    order = epoch_order(n, 0, 0)
    parts = [partition(order, r, world, drop_last=drop_last) for r in range(world)]
    assert len({len(p) for p in parts}) == 1
    flat = np.concatenate(parts).tolist()
    if drop_last:
        assert len(set(flat)) == len(flat) == n - n % world
    else:
        assert set(flat) == set(range(n)) and len(flat) == n + (-n % world)


def test_batches_and_bad_arguments() -> None:
    assert [b.tolist() for b in batches(np.arange(5), 2)] == [[0, 1], [2, 3], [4]]
    assert [b.tolist() for b in batches(np.arange(5), 2, drop_last=True)] == [[0, 1], [2, 3]]
    with pytest.raises(ConfigError, match="batch_size"):
        batches(np.arange(3), 0)
    with pytest.raises(ConfigError, match="rank"):
        partition(np.arange(3), 2, 2)
    with pytest.raises(ConfigError, match="window"):
        block_order([3], 0, 0, 0)
