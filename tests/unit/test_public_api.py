"""The top-level names are the public API: pinned, so a change to it is deliberate."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import loadwise


def test_public_names_are_pinned() -> None:
    assert sorted(loadwise.__all__) == [
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


def _fresh_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def test_import_loadwise_does_not_import_torch() -> None:
    """Names are imported on first use, so the CLI and light code start at once."""
    found = _fresh_python("import sys, loadwise; print('torch' in sys.modules)")
    assert found == "False", "`import loadwise` imported torch"
    found = _fresh_python(
        "import sys; from loadwise.cli.main import build_parser; build_parser(); "
        "print('torch' in sys.modules)"
    )
    assert found == "False", "building the CLI's parsers imported torch"


def test_subpackages_never_shadow_the_public_functions() -> None:
    """Importing ``loadwise.loading``/``loadwise.monitoring`` leaves the functions in place."""
    found = _fresh_python(
        "import loadwise, loadwise.loading, loadwise.monitoring; "
        "print(callable(loadwise.loader), callable(loadwise.monitor), "
        "type(loadwise.loader).__name__, type(loadwise.monitor).__name__)"
    )
    assert found == "True True function function"
    modules = {m.name for m in pkgutil.iter_modules(loadwise.__path__)}
    assert not (modules & set(loadwise.__all__)) - {"sources", "ray"}  # modules, on purpose


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'lodaer'"):
        _ = loadwise.lodaer  # type: ignore[attr-defined]
    assert set(loadwise.__all__) <= set(dir(loadwise))
