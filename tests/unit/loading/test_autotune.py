"""tune() ranks measured candidates; tuned_config() caches per dataset, machine and batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import loadwise
from loadwise.cache_dir import CACHE_ENV
from loadwise.errors import ConfigError
from loadwise.loading import autotune
from loadwise.loading.config import DataLoaderConfig

FEW = [{"num_workers": 0, "memory_efficient": True}, {"num_workers": 0, "memory_efficient": False}]


@pytest.fixture
def dataset(arrays_packed: Path):  # type: ignore[no-untyped-def]
    with loadwise.open(arrays_packed, "lazy") as ds:
        yield ds


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_candidates_cover_workers_prefetch_pinning_and_fetch() -> None:
    found = autotune.candidates(cores=2, cuda=True)
    assert {c["num_workers"] for c in found} == {0, 1, 2}
    assert {c["prefetch_factor"] for c in found if c["num_workers"]} == {2, 4}
    assert {c["pin_memory"] for c in found} == {False, True}
    assert {c["memory_efficient"] for c in found} == {False, True}
    assert all(c["prefetch_factor"] is None for c in found if c["num_workers"] == 0)
    assert not any(c["pin_memory"] for c in autotune.candidates(cores=1, cuda=False))


def test_tune_ranks_fastest_first(dataset) -> None:  # type: ignore[no-untyped-def]
    ranking = autotune.tune(dataset, batch_size=16, seconds=0.1, candidates=FEW)
    assert sorted(r.options["memory_efficient"] for r in ranking) == [False, True]
    rates = [r.samples_per_second for r in ranking]
    assert rates == sorted(rates, reverse=True) and rates[-1] > 0


def test_tuned_config_is_cached_and_reused(dataset, cache: Path) -> None:  # type: ignore[no-untyped-def]
    base = DataLoaderConfig(shuffle=False, generator_seed=7)
    first = autotune.tuned_config(dataset, 16, base, seconds=0.1, candidates=FEW)
    assert (first.batch_size, first.shuffle, first.generator_seed) == (16, False, 7)
    files = list((cache / "tune").glob("*.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    record["options"]["num_workers"] = 3  # a cached answer is used as is, not re-measured
    files[0].write_text(json.dumps(record))
    assert autotune.tuned_config(dataset, 16, base).num_workers == 3
    assert autotune.cache_path(dataset, 32) != files[0]  # batch size is part of the key


def test_a_damaged_cache_entry_is_measured_again(dataset, cache: Path) -> None:  # type: ignore[no-untyped-def]
    path = autotune.cache_path(dataset, 16)
    assert path is not None
    path.parent.mkdir(parents=True)
    path.write_text('{"options": {"num_workers": -1}}')
    config = autotune.tuned_config(dataset, 16, seconds=0.1, candidates=FEW)
    assert config.num_workers == 0
    assert json.loads(path.read_text())["options"]["num_workers"] == 0


def test_plain_datasets_are_measured_not_cached(cache: Path) -> None:
    data = list(range(100))
    assert autotune.cache_path(data, 8) is None
    config = autotune.tuned_config(data, 8, seconds=0.1, candidates=FEW)
    assert config.batch_size == 8 and not cache.exists()


def test_seconds_must_be_positive(dataset) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="seconds"):
        autotune.tune(dataset, seconds=0)


def test_a_cached_dataset_is_measured_warm(tmp_path: Path) -> None:
    """Every candidate meets the same warm cache (it used to warm up candidate by candidate,
    ranking cached mode by luck); the run keeps what was cached."""
    from loadwise.testing import make_photo_folder

    folder = make_photo_folder(tmp_path / "photos", classes=2, per_class=30, size=32, seed=5)
    loadwise.pack(folder.root, tmp_path / "jpegs", encoded=True, progress=False)
    ds = loadwise.open(tmp_path / "jpegs", "cached")
    assert autotune.warm_cache(ds, 16) == len(ds) and len(ds.cache) == len(ds)
    assert autotune.warm_cache(ds, 16) == 0  # already warm: nothing read
    results = autotune.tune(ds, batch_size=16, seconds=0.2,
                            candidates=[{"num_workers": 0}, {"num_workers": 1}])  # fmt: skip
    assert len(results) == 2 and ds.cache.misses == len(ds)  # only the warm-up missed
    small = loadwise.open(tmp_path / "jpegs", "cached", cache_bytes=32 * 32 * 3 * 10)
    assert autotune.warm_cache(small, 4) <= 16 and len(small.cache) == 10  # full: stops
    plain = loadwise.open(tmp_path / "jpegs", "lazy")
    assert autotune.warm_cache(plain, 16) == 0
