"""The top-level names are the public API: pinned, so a change to it is deliberate."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_one_cache_folder_for_packed_folders_and_tune_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loadwise.cache_dir import CACHE_ENV, cache_dir

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert cache_dir("tune", "x.json") == tmp_path / "tune" / "x.json"
    monkeypatch.delenv(CACHE_ENV)
    assert cache_dir() == Path.home() / ".cache" / "loadwise"

