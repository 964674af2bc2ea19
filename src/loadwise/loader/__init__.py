"""Loaders: a configured ``torch.utils.data.DataLoader`` fetching whole batches, epoch by epoch."""

from loadwise.loader.build import EpochBatchSampler, Loader, loader
from loadwise.loader.config import DataLoaderConfig

__all__ = ["DataLoaderConfig", "EpochBatchSampler", "Loader", "loader"]
