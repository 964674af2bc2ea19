"""Elastic resume as pure functions: an epoch stopped at any positions on one world size and
finished on others sees every sample, repeating only ``partition``'s pads."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadwise.errors import ConfigError
from loadwise.sampling.elastic import check_segment, elastic_share, remaining
from loadwise.sampling.order import epoch_order, partition


def _run_epoch(
    order: np.ndarray, worlds: list[int], stops: list[list[float]], drop: bool
) -> Counter[int]:
    """Every sample yielded over segments on ``worlds`` (each rank stopping at its fraction
    of its share, the last segment run to its end): how often each was seen."""
    seen: Counter[int] = Counter()
    segments: list[tuple[int, tuple[int, ...]]] = []
    for k, world in enumerate(worlds):
        shares = [elastic_share(order, segments, r, world, drop=drop) for r in range(world)]
        last = k == len(worlds) - 1
        positions = tuple(
            len(s) if last else int(f * len(s)) for s, f in zip(shares, stops[k], strict=False)
        )
        for share, position in zip(shares, positions, strict=True):
            seen.update(share[:position].tolist())
        segments.append((world, positions))
    return seen


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 120),
    worlds=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    stops=st.lists(st.lists(st.floats(0, 1), min_size=3, max_size=3), min_size=4, max_size=4),
    seed=st.integers(0, 2**16),
    lockstep=st.booleans(),
)
def test_every_sample_seen_once_across_world_sizes(
    n: int, worlds: list[int], stops: list[list[float]], seed: int, lockstep: bool
) -> None:
    """Drop mode: no sample twice; lost only the last segment's tail (< its world)."""
    order = epoch_order(n, seed, 0, True)
    if lockstep:  # ranks under DDP stand at the same position
        stops = [[s[0]] * 3 for s in stops]
    seen = _run_epoch(order, worlds, stops, drop=True)
    assert max(seen.values(), default=1) == 1
    assert n - len(seen) <= worlds[-1] - 1  # only the finishing segment drops a tail
    if all(w == 1 for w in worlds):  # one rank: nothing is a tail
        assert len(seen) == n


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 120),
    worlds=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    stops=st.lists(st.lists(st.floats(0, 1), min_size=3, max_size=3), min_size=4, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_padded_shares_lose_nothing(
    n: int, worlds: list[int], stops: list[list[float]], seed: int
) -> None:
    """Pad mode: every sample seen; repeats are only the pads each segment adds."""
    order = epoch_order(n, seed, 0, True)
    seen = _run_epoch(order, worlds, stops, drop=False)
    assert set(seen) == set(range(n))
    assert sum(seen.values()) - n <= sum(w - 1 for w in worlds)


def test_without_segments_the_share_is_the_plain_partition() -> None:
    order = epoch_order(50, 3, 1, True)
    for world in (1, 2, 3):
        for rank in range(world):
            assert np.array_equal(
                elastic_share(order, [], rank, world), partition(order, rank, world)
            )


def test_the_rest_keeps_the_orders_order() -> None:
    order = np.array([9, 4, 7, 1, 0, 3, 8, 2, 6, 5])
    # two ranks: shares [9, 7, 0, 8, 6] and [4, 1, 3, 2, 5]; rank 0 yielded 2, rank 1 yielded 3
    assert remaining(order, [(2, (2, 3))]).tolist() == [0, 8, 2, 6, 5]
    assert elastic_share(order, [(2, (2, 3))], 1, 3).tolist() == [8, 5]


@pytest.mark.parametrize("bad", [(0, ()), (2, (1,)), (2, (1, -1))])
def test_a_damaged_segment_is_refused(bad: tuple[int, tuple[int, ...]]) -> None:
    with pytest.raises(ConfigError, match="segment"):
        check_segment(bad)
