"""The top-level names are the public API: pinned, so a change to it is deliberate."""

from __future__ import annotations

import loadwise


def test_public_names_are_pinned() -> None:
    assert sorted(loadwise.__all__) == [
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
    assert all(hasattr(loadwise, name) for name in loadwise.__all__)


def test_every_error_is_a_loadwise_error() -> None:
    from loadwise import errors

    classes = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception)]
    assert len(classes) >= 9
    assert all(issubclass(c, loadwise.LoadwiseError) for c in classes)
