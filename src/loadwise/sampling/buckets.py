"""Length-bucketed order: consecutive groups of samples of similar length, a pure function of
``(lengths, seed, epoch, group)``, so batches carry little padding and a run resumes exactly.

Each epoch: a seeded permutation of the samples, cut into pools of ``pool_groups`` groups;
each pool sorted by length (ties in permutation order) and cut into groups of ``group``
samples; all full groups shuffled together; the one partial group (the last pool's rest) last.
With ``group = batch_size * world``, the loader's rank partition (``order[rank::world]``)
gives every rank one batch of each group: all ranks' batches alike in length, and a rank's
batches (handed to DataLoader workers whole) each from one group.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from loadwise.errors import ConfigError

#: Groups per pool: more sorts longer runs together (less padding), fewer mixes more.
POOL_GROUPS = 64


def bucket_order(
    lengths: np.ndarray,
    seed: int,
    epoch: int,
    group: int,
    *,
    shuffle: bool = True,
    pool_groups: int = POOL_GROUPS,
) -> np.ndarray:
    """A permutation of ``range(len(lengths))`` whose consecutive ``group``-sized runs hold
    samples of similar length (see the module's docstring)."""
    if group < 1 or pool_groups < 1:
        raise ConfigError(f"`group` and `pool_groups` must be >= 1. Found: {group}, {pool_groups}.")
    n = len(lengths)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), 0xB0C]))
    base = rng.permutation(n) if shuffle else np.arange(n)
    pool = group * pool_groups
    groups: list[np.ndarray] = []
    for start in range(0, n, pool):
        members = base[start : start + pool]
        ordered = members[np.argsort(lengths[members], kind="stable")]
        groups += [ordered[i : i + group] for i in range(0, len(ordered), group)]
    full = [g for g in groups if len(g) == group]
    rest = [g for g in groups if len(g) < group]
    picked = [full[i] for i in rng.permutation(len(full))] if shuffle else full
    parts = picked + rest
    return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)


def padding_fraction(lengths: np.ndarray, batches: Sequence[np.ndarray]) -> float:
    """Share of a padded batch's tokens that are padding, over ``batches`` (index arrays)."""
    padded = sum(int(lengths[b].max()) * len(b) for b in batches if len(b))
    real = sum(int(lengths[b].sum()) for b in batches)
    return 1 - real / padded if padded else 0.0
