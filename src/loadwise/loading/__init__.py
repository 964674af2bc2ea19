"""Loaders: a configured ``torch.utils.data.DataLoader`` fetching whole batches, epoch by epoch."""

from loadwise.loading.build import Loader
from loadwise.loading.config import DataLoaderConfig
from loadwise.loading.entry import loader
from loadwise.loading.sampler import EpochBatchSampler

__all__ = ["DataLoaderConfig", "EpochBatchSampler", "Loader", "loader"]
