"""Counter-based keys: pure in (seed, i, stream, slot), draws without replacement, uniform,
by full keys in small rows and by rejection in large ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadwise.errors import ConfigError
from loadwise.sampling import keys
from loadwise.sampling.keys import (
    SPARSE_ROWS,
    candidates,
    draw,
    mix,
    row_keys,
    seed_state,
    task_states,
)


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
@given(st.integers(1, 300), st.data())
def test_draws_are_without_replacement_within_each_rows_size(n: int, data) -> None:
    sizes = np.array(data.draw(st.lists(st.integers(1, n), min_size=1, max_size=6)))
    k = data.draw(st.integers(1, min(int(sizes.min()), 12)))
    states = task_states(data.draw(st.integers(0, 2**64)), np.arange(len(sizes)))
    drawn = draw(states, 1, sizes, k)
    assert drawn.shape == (len(sizes), k)
    for row, size in zip(drawn, sizes, strict=True):
        assert len(set(row.tolist())) == k and row.min() >= 0 and row.max() < size


@settings(max_examples=50)
@given(st.integers(0, 2**64), st.lists(st.integers(0, 10**9), min_size=1, max_size=12),
       st.lists(st.integers(3, 400), min_size=12, max_size=12))  # fmt: skip
def test_a_rows_draw_does_not_depend_on_the_other_rows(
    seed: int, ids: list[int], sizes: list[int]
) -> None:
    """Rows of both ways (sizes below and above the rejection threshold) in one call."""
    states, row_sizes = task_states(seed, np.array(ids)), np.array(sizes[: len(ids)])
    together = draw(states[:, None], np.array([[1, 2]]), row_sizes[:, None], 3)
    for j in range(len(ids)):
        alone = draw(states[j : j + 1, None], np.array([[1, 2]]), row_sizes[j : j + 1, None], 3)
        assert np.array_equal(together[j], alone[0])


def test_seeds_and_streams_give_different_draws() -> None:
    states = task_states(0, np.arange(50))
    base = draw(states, 0, 1000, 5)
    assert not np.array_equal(base, draw(states, 1, 1000, 5))
    assert not np.array_equal(base, draw(task_states(1, np.arange(50)), 0, 1000, 5))
    assert seed_state(2**64 + 5) != seed_state(5)  # every 64-bit word of a seed counts


@pytest.mark.parametrize("n", [10, 100])  # 10 keys every item; 100 >= 4 x 20 draws by rejection
def test_draws_are_uniform_over_items_and_positions(n: int) -> None:
    k, tasks = 2, 40_000
    assert (n >= SPARSE_ROWS * candidates(k)) == (n == 100)
    drawn = draw(task_states(4, np.arange(tasks)), 0, n, k)
    counts = np.stack([np.bincount(drawn[:, p], minlength=n) for p in range(k)])
    expected = tasks / n
    sigma = np.sqrt(expected)
    assert np.abs(counts - expected).max() < 5 * sigma  # one cell of up to 200 at 5 sigma
    pairs = np.bincount(drawn[:, 0] * n + drawn[:, 1], minlength=n * n).reshape(n, n)
    assert (np.diag(pairs) == 0).all()  # never the same item twice
    if n == 10:  # every ordered pair equally likely: 90 cells of ~444
        off = pairs[~np.eye(n, dtype=bool)]
        assert np.abs(off - tasks / 90).max() < 5 * np.sqrt(tasks / 90)


def test_rows_short_of_distinct_candidates_fall_back_to_full_keys(monkeypatch) -> None:
    """With as few candidates as draws, collisions are common: those rows key every item
    and still draw k distinct, uniformly, and the same as when drawn alone."""
    monkeypatch.setattr(keys, "candidates", lambda k: k)
    states = task_states(9, np.arange(20_000))
    drawn = draw(states, 0, 24, 6)  # 24 >= 4 x 6: by rejection, 6 draws of 24 collide ~50%
    _, complete = keys._by_rejection(
        states, np.zeros(len(states), np.uint64), np.full(len(states), 24), 6
    )
    assert 0.2 < complete.mean() < 0.8
    assert all(len(set(row)) == 6 for row in drawn.tolist())
    counts = np.bincount(drawn.ravel(), minlength=24)
    assert np.abs(counts - counts.mean()).max() < 5 * np.sqrt(counts.mean())
    assert np.array_equal(drawn[~complete][:3], draw(states[~complete][:3], 0, 24, 6))


def test_rows_of_over_a_million_items_are_refused() -> None:
    with pytest.raises(ConfigError, match="cannot draw among 1,048,577 items"):
        draw(task_states(0, np.arange(2)), 0, 2**20 + 1, 3)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "3"])
def test_bad_seeds_are_named(bad: object) -> None:
    with pytest.raises(ConfigError, match="`seed` must be an integer >= 0"):
        seed_state(bad)  # type: ignore[arg-type]
