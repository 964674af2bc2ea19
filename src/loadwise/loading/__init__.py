"""Loaders: a configured ``torch.utils.data.DataLoader`` fetching whole batches, epoch by epoch."""

from loadwise.loading.build import EpochBatchSampler, Loader, loader
from loadwise.loading.config import DataLoaderConfig

__all__ = ["DataLoaderConfig", "EpochBatchSampler", "Loader", "loader"]
