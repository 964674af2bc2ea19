"""Elastic resume: an interrupted epoch's unseen samples re-partitioned over a new world size.

An epoch runs in *segments*. The first cuts the epoch's order into ``world`` equal shares
(``order.partition``); each rank yields a prefix of its share. A resume on a different world
size starts a new segment: the samples no rank yielded, in the order's order, are cut into
the new world's shares the same way. So what is left after any number of resumes is a pure
function of the order and each finished segment's ``(world, positions)`` — the few integers
a loader state carries (``loading/state.py``). No sample is yielded twice across segments
and none is skipped; within a segment, ``partition``'s padding (or dropping, with
``pad_ranks=False``) keeps the shares equal as in any epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from loadwise.errors import ConfigError
from loadwise.sampling.order import partition

#: One finished segment of an epoch: its world size and how many samples of its share each
#: rank (0 .. world - 1) yielded.
Segment = tuple[int, tuple[int, ...]]


def yielded(rest: np.ndarray, segment: Segment, *, drop: bool = False) -> np.ndarray:
    """The samples of ``rest`` that the ranks of ``segment`` yielded (pads may repeat)."""
    world, positions = check_segment(segment)
    shares = [partition(rest, rank, world, drop_last=drop) for rank in range(world)]
    taken = [share[:position] for share, position in zip(shares, positions, strict=True)]
    return np.concatenate(taken) if taken else np.empty(0, np.int64)


def remaining(order: np.ndarray, segments: Sequence[Segment], *, drop: bool = False) -> np.ndarray:
    """The samples of ``order`` no rank yielded in ``segments``, in ``order``'s order."""
    rest = np.asarray(order, dtype=np.int64)
    for segment in segments:
        rest = rest[~np.isin(rest, yielded(rest, segment, drop=drop))]
    return rest


def elastic_share(
    order: np.ndarray, segments: Sequence[Segment], rank: int, world: int, *, drop: bool = False
) -> np.ndarray:
    """Rank ``rank``'s share of what ``segments`` left of ``order``, for ``world`` ranks."""
    return partition(remaining(order, segments, drop=drop), rank, world, drop_last=drop)


def check_segment(segment: Segment) -> Segment:
    """``(world, positions)`` with one non-negative position per rank, else ``ConfigError``."""
    world, positions = int(segment[0]), tuple(int(p) for p in segment[1])
    if world < 1 or len(positions) != world or min(positions) < 0:
        raise ConfigError(
            f"an epoch segment is (world >= 1, one position >= 0 per rank). Found: {segment!r}."
        )
    return world, positions


__all__ = ["Segment", "check_segment", "elastic_share", "remaining", "yielded"]
