"""Sample order as pure functions of ``(seed, epoch, sizes, rank, world)``.

The same arguments give the same order on every machine, for any number of workers, so a
run can be reproduced, audited and resumed from a handful of integers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from loadwise.errors import ConfigError


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """A permutation of ``range(n)`` for this epoch (the identity when not shuffling)."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return _rng(seed, epoch).permutation(n).astype(np.int64)


def block_order(
    shard_sizes: Sequence[int], seed: int, epoch: int, window: int, shuffle: bool = True
) -> np.ndarray:
    """Shards in a shuffled order, samples shuffled within windows of ``window`` shards.

    Reads stay local to a few shards at a time (what streaming needs) while every sample
    still appears exactly once per epoch.
    """
    if window < 1:
        raise ConfigError(f"`window` must be >= 1 shard. Found: {window}.")
    starts = np.concatenate([[0], np.cumsum(shard_sizes, dtype=np.int64)])
    if not shuffle:
        return np.arange(starts[-1], dtype=np.int64)
    rng = _rng(seed, epoch)
    shards = rng.permutation(len(shard_sizes))
    blocks = []
    for first in range(0, len(shards), window):
        members = [np.arange(starts[s], starts[s + 1]) for s in shards[first : first + window]]
        blocks.append(rng.permutation(np.concatenate(members)) if members else members)
    return np.concatenate(blocks).astype(np.int64) if blocks else np.empty(0, np.int64)


def partition(order: np.ndarray, rank: int, world: int, *, drop_last: bool = False) -> np.ndarray:
    """Rank ``rank``'s share of ``order``: disjoint, and of equal length on every rank.

    The tail is padded by repeating the order's first samples (default) or dropped.
    """
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"`rank` must be in [0, {world}) with world >= 1. Found: {rank}.")
    if drop_last:
        order = order[: len(order) - len(order) % world]
    elif len(order) % world:
        pad = world - len(order) % world
        order = np.concatenate([order, np.resize(order, pad)])
    return order[rank::world]


def batches(order: np.ndarray, batch_size: int, drop_last: bool = False) -> list[np.ndarray]:
    """Consecutive batches of ``order``; the last one shorter unless ``drop_last``."""
    if batch_size < 1:
        raise ConfigError(f"`batch_size` must be >= 1. Found: {batch_size}.")
    end = len(order) - len(order) % batch_size if drop_last else len(order)
    return [order[i : i + batch_size] for i in range(0, end, batch_size)]


def _rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch)]))
