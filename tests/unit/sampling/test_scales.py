"""Scale schedules: pure functions of (seed, epoch, batch); plans that cover a share exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadwise.errors import ConfigError
from loadwise.sampling.scales import Progressive, RandomScales, plan, progressive_resolution


def test_progressive_resizing_follows_ffcvs_ramp() -> None:
    """FFCV's rn50 configs: 160 until epoch start_ramp, 192 from end_ramp, rounded to 32."""
    sides = [progressive_resolution(e, 10, 13, 160, 192) for e in range(16)]
    assert sides[:11] == [160] * 11 and sides[13:] == [192] * 3
    assert set(sides) == {160, 192}
    assert [Progressive(128, 256, 0, 4).side(e) for e in range(6)] == [128, 160, 192, 224, 256, 256]
    assert (Progressive(160, 192, 2, 4).scales(0, 3, 5) == 192).all()  # 176/32 = 5.5 -> 6


def test_random_scales_are_multiples_of_32_within_half_to_one_and_a_half() -> None:
    schedule = RandomScales(640)
    np.testing.assert_array_equal(schedule.choices(0), np.arange(320, 961, 32))
    drawn = schedule.scales(seed=3, epoch=1, count=500)
    assert set(drawn.tolist()) == set(schedule.choices(1).tolist())
    np.testing.assert_array_equal(drawn[:40], schedule.scales(seed=3, epoch=1, count=40))
    assert not np.array_equal(drawn, schedule.scales(seed=3, epoch=2, count=500))
    assert not np.array_equal(drawn, schedule.scales(seed=4, epoch=1, count=500))


def test_keeping_pixels_shrinks_batches_of_larger_sides() -> None:
    schedule = RandomScales(224, keep_pixels=True)
    sizes = schedule.batch_sizes(64, 0, np.array([128, 224, 320]))
    np.testing.assert_array_equal(sizes, [196, 64, 31])
    assert RandomScales(224).batch_sizes(64, 0, np.array([128, 320])).tolist() == [64, 64]


def test_a_progressive_centre_moves_the_random_range() -> None:
    schedule = RandomScales(Progressive(128, 256, 0, 4), low=0.5, high=1.5)
    assert schedule.choices(0)[[0, -1]].tolist() == [64, 192]
    assert schedule.choices(4)[[0, -1]].tolist() == [128, 384]


@settings(max_examples=60, deadline=None)
@given(
    share=st.integers(0, 400),
    batch=st.integers(1, 40),
    epoch=st.integers(0, 5),
    keep=st.booleans(),
    drop=st.booleans(),
)
def test_a_plan_cuts_the_share_once_in_order(
    share: int, batch: int, epoch: int, keep: bool, drop: bool
) -> None:
    schedule = RandomScales(96, keep_pixels=keep, multiple=16)
    ends, scales = plan(schedule, 7, epoch, share, batch, drop)
    sizes = np.diff(np.concatenate([[0], ends]))
    assert (sizes > 0).all() and len(scales) == len(ends)
    expected = schedule.batch_sizes(batch, epoch, scales)
    assert (sizes[:-1] == expected[:-1]).all()
    whole, _ = plan(schedule, 7, epoch, share, batch, False)
    assert (whole[-1] if len(whole) else 0) == share
    if drop:  # only a short last batch is dropped
        assert not len(ends) or sizes[-1] == expected[-1]
        np.testing.assert_array_equal(ends, whole[: len(ends)])
        assert len(whole) - len(ends) in (0, 1)
    else:
        np.testing.assert_array_equal(ends, whole)
    np.testing.assert_array_equal(scales, schedule.scales(7, epoch, len(scales)))


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ConfigError, match="max_res"):
        Progressive(224, 160)
    with pytest.raises(ConfigError, match="start_epoch <= end_epoch"):
        Progressive(160, 192, 5, 2)
    with pytest.raises(ConfigError, match="low <= high"):
        RandomScales(640, low=1.5, high=0.5)
    with pytest.raises(ConfigError, match="`size`"):
        RandomScales(0)
