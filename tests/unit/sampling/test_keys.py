"""Counter-based keys: pure in (seed, i, stream, slot), draws without replacement, uniform."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadwise.errors import ConfigError
from loadwise.sampling.keys import mix, row_keys, seed_state, smallest, task_states


def test_mix_is_a_bijection_on_a_sample_of_inputs() -> None:
    x = np.arange(100_000, dtype=np.uint64) * np.uint64(0x10001)
    assert len(np.unique(mix(x))) == len(x)


@settings(max_examples=50)
@given(st.integers(0, 2**70), st.lists(st.integers(0, 10**9), min_size=1, max_size=20))
def test_a_tasks_keys_do_not_depend_on_its_batch(seed: int, ids: list[int]) -> None:
    together = row_keys(task_states(seed, np.array(ids)), 3, 7)
    for row, i in zip(together, ids, strict=True):
        assert np.array_equal(row, row_keys(task_states(seed, np.array([i])), 3, 7)[0])


@settings(max_examples=60)
@given(st.integers(1, 40), st.data())
def test_smallest_draws_without_replacement_within_each_rows_size(n: int, data) -> None:
    sizes = np.array(data.draw(st.lists(st.integers(1, n), min_size=1, max_size=6)))
    k = data.draw(st.integers(1, int(sizes.min())))
    states = task_states(data.draw(st.integers(0, 2**64)), np.arange(len(sizes)))
    drawn = smallest(states, 1, n, k, sizes)
    assert drawn.shape == (len(sizes), k)
    for row, size in zip(drawn, sizes, strict=True):
        assert len(set(row.tolist())) == k and row.max() < size


def test_seeds_and_streams_give_different_draws() -> None:
    states = task_states(0, np.arange(50))
    base = smallest(states, 0, 1000, 5)
    assert not np.array_equal(base, smallest(states, 1, 1000, 5))
    assert not np.array_equal(base, smallest(task_states(1, np.arange(50)), 0, 1000, 5))
    assert seed_state(2**64 + 5) != seed_state(5)  # every 64-bit word of a seed counts


def test_draws_are_uniform_over_items_and_positions() -> None:
    drawn = smallest(task_states(4, np.arange(20_000)), 0, 10, 3)
    counts = np.stack([np.bincount(drawn[:, p], minlength=10) for p in range(3)])
    expected = 20_000 / 10
    assert np.abs(counts - expected).max() < 0.08 * expected  # 3.8 sigma of one cell


@pytest.mark.parametrize("bad", [-1, True, 1.5, "3"])
def test_bad_seeds_are_named(bad: object) -> None:
    with pytest.raises(ConfigError, match="`seed` must be an integer >= 0"):
        seed_state(bad)  # type: ignore[arg-type]
