"""``loader(..., config="auto")``: the tuner's measured choice, then the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

import loadwise
from loadwise.errors import ConfigError
from loadwise.loading import autotune


def test_auto_config_measures_once_then_reads_the_cache(
    arrays_packed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADWISE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(autotune, "candidates", lambda *a, **k: [
        {"num_workers": 0, "memory_efficient": True},
        {"num_workers": 0, "memory_efficient": False},
    ])  # fmt: skip
    data = loadwise.open(arrays_packed, "eager")
    first = loadwise.loader(data, 32, seed=1, config="auto")
    assert first.config.batch_size == 32 and first.config.generator_seed == 1
    assert first.config.memory_efficient  # one gather per batch beats 32 __getitem__ calls
    cached = autotune.cache_path(data, 32)
    assert cached is not None and cached.is_file() and tmp_path in cached.parents

    def no_measuring(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached result should be used")

    monkeypatch.setattr(autotune, "tune", no_measuring)
    again = loadwise.loader(data, 32, seed=1, config="auto")
    assert again.config == first.config
    assert [b["index"].tolist() for b in again] == [b["index"].tolist() for b in first]


def test_other_strings_are_refused(arrays_packed: Path) -> None:
    with pytest.raises(ConfigError, match="'auto'"):
        loadwise.loader(loadwise.open(arrays_packed, "lazy"), config="fast")  # type: ignore[arg-type]
