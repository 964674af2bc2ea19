"""The loader's side of ``bucket_by_length``: the epoch order from ``sampling/buckets.py`` over
the dataset's sample lengths, and the check that a resumed run buckets the same way.

Buckets are groups of ``batch_size * world`` samples, so the order depends on both: a state
saved with bucketing records the group, and a loader with another group (or none) refuses it
rather than skip the wrong samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from loadwise.access.lengths import sample_lengths
from loadwise.errors import ResumeError
from loadwise.sampling.buckets import bucket_order

STATE_KEY = "bucket_group"


def bucketed_order(
    dataset: Any, group: int, seed: int, shuffle: bool
) -> Callable[[int], np.ndarray]:
    """``order(epoch)`` with similar lengths in each run of ``group`` samples."""
    lengths = sample_lengths(dataset)
    return lambda epoch: bucket_order(lengths, seed, epoch, group, shuffle=shuffle)


def with_group(state: dict[str, Any], group: int | None) -> dict[str, Any]:
    """A loader state that records the bucket group (if bucketing)."""
    return state if group is None else {**state, STATE_KEY: group}


def check_group(state: dict[str, Any], group: int | None) -> None:
    """``ResumeError`` unless ``state`` was saved bucketing the same way as this loader."""
    saved = state.get(STATE_KEY) if hasattr(state, "get") else None
    if saved == group:
        return

    def what(g: object) -> str:
        return "no length buckets" if g is None else f"length buckets of {g} samples"

    raise ResumeError(
        f"cannot resume: the state was saved with {what(saved)}, this loader has {what(group)} "
        f"(buckets are batch_size x world size samples, so the order would differ). Resume "
        f"with the same batch size, world size and bucket_by_length."
    )
