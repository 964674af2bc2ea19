"""The names ``loadwise.compat`` promises, pinned so none disappears or sneaks in."""

from __future__ import annotations

import loadwise
import loadwise.compat as compat


def test_public_names_are_pinned() -> None:
    assert sorted(compat.__all__) == [
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
    assert all(hasattr(compat, name) for name in compat.__all__)


def test_reexports_are_the_core_objects() -> None:
    assert compat.LoadingMode is loadwise.LoadingMode
    assert compat.DataLoaderConfig is loadwise.DataLoaderConfig


def test_factory_builds_text_and_hdf5_loaders() -> None:
    assert callable(compat.DataLoaderFactory.create_text_dataloader)
    assert callable(compat.DataLoaderFactory.create_hdf5_dataloader)
