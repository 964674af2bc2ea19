"""A monitored loader reports each stage (fetch, gather, decode, transform, transfer) as
p50/p90/p99 per batch, wherever the stage ran; users still get plain batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import loadwise
from loadwise import stages as stages_switch
from loadwise.loading import DataLoaderConfig
from loadwise.monitoring import MonitorStats, report


@pytest.fixture(scope="module")
def encoded_packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PNG bytes decoded on read, so batches have a real decode stage."""
    from tests.data import write_class_tree

    root = write_class_tree(tmp_path_factory.mktemp("photos") / "tree", classes=3, per_class=20)
    dest = tmp_path_factory.mktemp("encoded") / "encoded.loadwise"
    loadwise.pack(root, dest, encoded=True, progress=False)
    return dest


def scaled(batch: dict[str, Any]) -> dict[str, Any]:
    return {**batch, "image": batch["image"].float() / 255}


@pytest.mark.parametrize("workers", [0, 2])
def test_stage_percentiles_are_present_and_plausible(encoded_packed: Path, workers: int) -> None:
    config = DataLoaderConfig(batch_size=8, num_workers=workers, enable_monitoring=True,
                              device="cpu", batch_transform=scaled)  # fmt: skip
    loader = loadwise.loader(loadwise.open(encoded_packed, "lazy"), config=config)
    for _ in range(2):
        batches = list(loader)
        assert all(isinstance(b, dict) and b["image"].dtype == torch.float32 for b in batches)
    assert loader.monitor is not None
    stats = loader.monitor.stats()
    assert list(stats.stages) == ["fetch", "gather", "decode", "transform", "transfer"]
    loop = stats.seconds
    for name, p in stats.stages.items():
        assert 0 < p.p50 <= p.p90 <= p.p99 <= p.max < loop, name
    assert stats.stages["decode"].p50 > 1e-5  # 8 PNGs decoded in a worker or here
    text = report.text(stats)
    assert "stage" in text and "decode" in text and "transfer" in text
    again = MonitorStats.from_dict(stats.to_dict())
    assert again.stages == stats.stages


def test_unmonitored_loaders_time_nothing(arrays_packed: Path) -> None:
    loader = loadwise.loader(loadwise.open(arrays_packed, "lazy"), 64, num_workers=2)
    assert loader.monitor is None and all(isinstance(b, dict) for b in loader)
    monitored = loadwise.monitor(loader)
    list(monitored)
    assert monitored.stats().stages == {}  # wrapped from outside: the wait, not the stages


def test_with_0_workers_fetch_includes_the_gather(arrays_packed: Path) -> None:
    config = DataLoaderConfig(batch_size=64, enable_monitoring=True)
    loader = loadwise.loader(loadwise.open(arrays_packed, "eager"), config=config)
    list(loader)
    assert not stages_switch.enabled()  # off again once the epoch is over
    assert loader.monitor is not None
    stages = loader.monitor.stages.snapshot()
    assert set(stages) == {"fetch", "gather"} and len(stages["fetch"]) == 5
    assert all(f >= g for f, g in zip(stages["fetch"], stages["gather"], strict=True))
