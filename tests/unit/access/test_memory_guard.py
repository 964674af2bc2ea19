"""``max_memory_usage``: one estimate refuses eager data, steers ``auto`` and checks loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

import loadwise
from loadwise.access import budget
from loadwise.errors import ConfigError, ModeError
from loadwise.loading import DataLoaderConfig


@pytest.fixture
def tight(monkeypatch: pytest.MonkeyPatch, arrays_packed: Path) -> int:
    """Pretend the machine has 4x the dataset's bytes available."""
    data = loadwise.open(arrays_packed, "lazy")
    size = budget.stored_bytes(data.manifest, data.fields)
    monkeypatch.setattr(budget, "available_memory", lambda: 4 * size)
    return size


def test_eager_refuses_beyond_the_fraction_with_figures(arrays_packed: Path, tight: int) -> None:
    with pytest.raises(ModeError, match=r"eager mode refused.*MiB available.*max_memory_usage"):
        loadwise.open(arrays_packed, "eager", max_memory_usage=0.2)
    assert loadwise.open(arrays_packed, "eager", max_memory_usage=0.3).memory_bytes == tight


def test_auto_uses_the_same_estimate(arrays_packed: Path, tight: int) -> None:
    assert loadwise.open(arrays_packed, "auto", max_memory_usage=0.2).mode == "lazy"
    assert loadwise.open(arrays_packed, "auto", max_memory_usage=0.3).mode == "eager"
    assert loadwise.choose_mode(arrays_packed, max_memory_usage=0.2)[0] == "lazy"


def test_loader_config_checks_eager_data(
    arrays_packed: Path, tight: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = loadwise.open(arrays_packed, "eager")
    monkeypatch.setattr(budget, "available_memory", lambda: 3 * tight)  # 4x minus what loaded
    with pytest.raises(ModeError, match="exceeds `max_memory_usage`"):
        loadwise.loader(data, config=DataLoaderConfig(max_memory_usage=0.2))
    assert len(loadwise.loader(data, config=DataLoaderConfig(max_memory_usage=0.3))) > 0
    lazy = loadwise.open(arrays_packed, "lazy")  # nothing held in RAM: nothing to check
    assert len(loadwise.loader(lazy, config=DataLoaderConfig(max_memory_usage=0.01))) > 0


def test_fraction_is_checked() -> None:
    with pytest.raises(ConfigError, match="max_memory_usage"):
        DataLoaderConfig(max_memory_usage=1.5)
