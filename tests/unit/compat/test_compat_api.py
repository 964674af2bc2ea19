"""The names ``loadwise.compat`` promises, pinned so none disappears or sneaks in."""

from __future__ import annotations

import loadwise
import loadwise.compat as compat


def test_public_names_are_pinned() -> None:
    assert sorted(compat.__all__) == [
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
    assert all(hasattr(compat, name) for name in compat.__all__)


def test_reexports_are_the_core_objects() -> None:
    assert compat.LoadingMode is loadwise.LoadingMode
    assert compat.DataLoaderConfig is loadwise.DataLoaderConfig


def test_factory_has_no_stubs_for_later_issues() -> None:
    assert not hasattr(compat.DataLoaderFactory, "create_text_dataloader")
    assert not hasattr(compat.DataLoaderFactory, "create_hdf5_dataloader")
