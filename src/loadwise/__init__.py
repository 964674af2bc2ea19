"""loadwise: keep PyTorch training fed. Pack once, open in the right mode, load in batches.

``import loadwise`` does not import torch: each public name below is imported from its
module the first time it is used (PEP 562 ``__getattr__``), so the command line and code
that only reads errors or the version start at once. Subpackages are named apart from the
public functions (``loading/`` serves ``loadwise.loader``, ``monitoring/`` serves
``loadwise.monitor``), so importing a subpackage never rebinds a public name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loadwise._version import __version__
from loadwise.errors import LoadwiseError

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from loadwise import ray, sources
    from loadwise.access.auto import LoadingMode, choose_mode
    from loadwise.access.auto import open_dataset as open
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
    from loadwise.compat.multiscale import MultiScaleDataset
    from loadwise.compat.omniglot import (
        OmniglotDataset,
        OmniglotTaskDataset,
        PrefetchedOmniglotDataset,
    )
    from loadwise.compat.scale_groups import group_scales_by_memory
    from loadwise.compat.splits import create_dataloaders
    from loadwise.compat.text import TextDataset
    from loadwise.format.verify import VerifyReport, verify
    from loadwise.loading.build import Loader
    from loadwise.loading.config import DataLoaderConfig
    from loadwise.loading.elastic import all_states
    from loadwise.loading.entry import loader
    from loadwise.monitoring.loop import monitor
    from loadwise.packing.pack import PackReport, pack
    from loadwise.sampling.episodes import episodes

#: Public name -> (module, attribute in it; None for the module itself), imported on first use.
_LAZY: dict[str, tuple[str, str | None]] = {
    "BaseDataset": ("loadwise.compat.datasets", "BaseDataset"),
    "CustomCollateFn": ("loadwise.compat.collate", "CustomCollateFn"),
    "DataLoaderConfig": ("loadwise.loading.config", "DataLoaderConfig"),
    "DataLoaderFactory": ("loadwise.compat.loaders", "DataLoaderFactory"),
    "DataLoaderPerformanceMonitor": ("loadwise.compat.monitors", "DataLoaderPerformanceMonitor"),
    "EfficientDataLoader": ("loadwise.compat.loaders", "EfficientDataLoader"),
    "HDF5Dataset": ("loadwise.compat.hdf5", "HDF5Dataset"),
    "ImageDataset": ("loadwise.compat.datasets", "ImageDataset"),
    "InMemoryAudioTextDataset": ("loadwise.compat.multimodal", "InMemoryAudioTextDataset"),
    "InMemoryImageTextDataset": ("loadwise.compat.multimodal", "InMemoryImageTextDataset"),
    "Loader": ("loadwise.loading.build", "Loader"),
    "LoadingMode": ("loadwise.access.auto", "LoadingMode"),
    "MemoryEfficientDataset": ("loadwise.compat.datasets", "MemoryEfficientDataset"),
    "MemoryMonitor": ("loadwise.compat.monitors", "MemoryMonitor"),
    "MultiScaleDataset": ("loadwise.compat.multiscale", "MultiScaleDataset"),
    "OmniglotDataset": ("loadwise.compat.omniglot", "OmniglotDataset"),
    "OmniglotTaskDataset": ("loadwise.compat.omniglot", "OmniglotTaskDataset"),
    "PackReport": ("loadwise.packing.pack", "PackReport"),
    "PrefetchedOmniglotDataset": ("loadwise.compat.omniglot", "PrefetchedOmniglotDataset"),
    "TextDataset": ("loadwise.compat.text", "TextDataset"),
    "VerifyReport": ("loadwise.format.verify", "VerifyReport"),
    "all_states": ("loadwise.loading.elastic", "all_states"),
    "choose_mode": ("loadwise.access.auto", "choose_mode"),
    "collate_in_memory_audio": ("loadwise.compat.multimodal", "collate_in_memory_audio"),
    "collate_in_memory_images": ("loadwise.compat.multimodal", "collate_in_memory_images"),
    "create_dataloaders": ("loadwise.compat.splits", "create_dataloaders"),
    "episodes": ("loadwise.sampling.episodes", "episodes"),
    "group_scales_by_memory": ("loadwise.compat.scale_groups", "group_scales_by_memory"),
    "loader": ("loadwise.loading.entry", "loader"),
    "monitor": ("loadwise.monitoring.loop", "monitor"),
    "open": ("loadwise.access.auto", "open_dataset"),
    "pack": ("loadwise.packing.pack", "pack"),
    "ray": ("loadwise.ray", None),
    "sources": ("loadwise.sources", None),
    "verify": ("loadwise.format.verify", "verify"),
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use, and keep the name bound from then on."""
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'loadwise' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    "Loader",
    "LoadingMode",
    "LoadwiseError",
    "MemoryEfficientDataset",
    "MemoryMonitor",
    "MultiScaleDataset",
    "OmniglotDataset",
    "OmniglotTaskDataset",
    "PackReport",
    "PrefetchedOmniglotDataset",
    "TextDataset",
    "VerifyReport",
    "__version__",
    "all_states",
    "choose_mode",
    "collate_in_memory_audio",
    "collate_in_memory_images",
    "create_dataloaders",
    "episodes",
    "group_scales_by_memory",
    "loader",
    "monitor",
    "open",
    "pack",
    "ray",
    "sources",
    "verify",
]
