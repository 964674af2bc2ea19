"""loadwise: keep PyTorch training fed. Pack once, open in the right mode, load in batches."""

from loadwise import sources
from loadwise._version import __version__
from loadwise.access import LoadingMode, choose_mode
from loadwise.access import open_dataset as open
from loadwise.compat import (
    BaseDataset,
    DataLoaderFactory,
    DataLoaderPerformanceMonitor,
    EfficientDataLoader,
    ImageDataset,
    MemoryEfficientDataset,
    MemoryMonitor,
    OmniglotDataset,
    OmniglotTaskDataset,
    PrefetchedOmniglotDataset,
    create_dataloaders,
)
from loadwise.errors import LoadwiseError
from loadwise.format import PackReport, pack
from loadwise.format.verify import VerifyReport, verify
from loadwise.loading import DataLoaderConfig, Loader, loader
from loadwise.monitoring import monitor
from loadwise.sampling.episodes import episodes

__all__ = [
    "BaseDataset",
    "DataLoaderConfig",
    "DataLoaderFactory",
    "DataLoaderPerformanceMonitor",
    "EfficientDataLoader",
    "ImageDataset",
    "Loader",
    "LoadingMode",
    "LoadwiseError",
    "MemoryEfficientDataset",
    "MemoryMonitor",
    "OmniglotDataset",
    "OmniglotTaskDataset",
    "PackReport",
    "PrefetchedOmniglotDataset",
    "VerifyReport",
    "__version__",
    "choose_mode",
    "create_dataloaders",
    "episodes",
    "loader",
    "monitor",
    "open",
    "pack",
    "sources",
    "verify",
]
