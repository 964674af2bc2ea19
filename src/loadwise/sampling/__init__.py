"""Sampling: which samples, in which order, for which rank and worker."""

from loadwise.sampling.order import batches, block_order, epoch_order, partition

__all__ = ["batches", "block_order", "epoch_order", "partition"]
