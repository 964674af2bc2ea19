"""The names the source documents promise, as thin wrappers over the core.

Folders are packed once into a cache (``packed_folder``); datasets open the packed data in a
loading mode; loaders are ``loadwise.loader`` underneath. See README.md in this folder.
"""

from loadwise.access.auto import LoadingMode
from loadwise.compat.cache import packed_folder
from loadwise.compat.collate import CustomCollateFn
from loadwise.compat.datasets import BaseDataset, ImageDataset, MemoryEfficientDataset
from loadwise.compat.hdf5 import HDF5Dataset
from loadwise.compat.loaders import DataLoaderFactory, EfficientDataLoader
from loadwise.compat.monitors import DataLoaderPerformanceMonitor, MemoryMonitor
from loadwise.compat.multimodal import (
    InMemoryAudioTextDataset,
    InMemoryImageTextDataset,
    collate_in_memory_audio,
    collate_in_memory_images,
)
from loadwise.compat.multiscale import MultiScaleDataset, ScaleBatch
from loadwise.compat.omniglot import (
    OmniglotDataset,
    OmniglotTaskDataset,
    PrefetchedOmniglotDataset,
)
from loadwise.compat.scale_groups import ScaleGroup, group_scales_by_memory
from loadwise.compat.splits import create_dataloaders
from loadwise.compat.text import TextDataset, TextReport
from loadwise.loading.config import DataLoaderConfig

__all__ = [
    "BaseDataset",
    "CustomCollateFn",
    "DataLoaderConfig",
    "DataLoaderFactory",
    "DataLoaderPerformanceMonitor",
    "EfficientDataLoader",
    "HDF5Dataset",
    "ImageDataset",
    "InMemoryAudioTextDataset",
    "InMemoryImageTextDataset",
    "LoadingMode",
    "MemoryEfficientDataset",
    "MemoryMonitor",
    "MultiScaleDataset",
    "OmniglotDataset",
    "OmniglotTaskDataset",
    "PrefetchedOmniglotDataset",
    "ScaleBatch",
    "ScaleGroup",
    "TextDataset",
    "TextReport",
    "collate_in_memory_audio",
    "collate_in_memory_images",
    "create_dataloaders",
    "group_scales_by_memory",
    "packed_folder",
]
