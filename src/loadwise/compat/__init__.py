"""The names the source documents promise, as thin wrappers over the core.

Folders are packed once into a cache (``packed_folder``); datasets open the packed data in a
loading mode; loaders are ``loadwise.loader`` underneath. See README.md in this folder.
"""

from loadwise.access.auto import LoadingMode
from loadwise.compat.cache import packed_folder
from loadwise.compat.datasets import BaseDataset, ImageDataset, MemoryEfficientDataset
from loadwise.compat.loaders import DataLoaderFactory, EfficientDataLoader
from loadwise.compat.monitors import DataLoaderPerformanceMonitor, MemoryMonitor
from loadwise.compat.multimodal import (
    InMemoryAudioTextDataset,
    InMemoryImageTextDataset,
    collate_in_memory_audio,
    collate_in_memory_images,
)
from loadwise.compat.omniglot import (
    OmniglotDataset,
    OmniglotTaskDataset,
    PrefetchedOmniglotDataset,
)
from loadwise.compat.splits import create_dataloaders
from loadwise.loading.config import DataLoaderConfig

__all__ = [
    "BaseDataset",
    "DataLoaderConfig",
    "DataLoaderFactory",
    "DataLoaderPerformanceMonitor",
    "EfficientDataLoader",
    "ImageDataset",
    "InMemoryAudioTextDataset",
    "InMemoryImageTextDataset",
    "LoadingMode",
    "MemoryEfficientDataset",
    "MemoryMonitor",
    "OmniglotDataset",
    "OmniglotTaskDataset",
    "PrefetchedOmniglotDataset",
    "collate_in_memory_audio",
    "collate_in_memory_images",
    "create_dataloaders",
    "packed_folder",
]
