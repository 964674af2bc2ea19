"""Sampling: which samples, in which order, for which rank and worker; few-shot tasks."""

from loadwise.sampling.episodes import Episodes, EpisodeSpec, episode, episodes
from loadwise.sampling.order import batches, block_order, epoch_order, partition

__all__ = [
    "EpisodeSpec",
    "Episodes",
    "batches",
    "block_order",
    "episode",
    "episodes",
    "epoch_order",
    "partition",
]
