"""The loader: options checked, epochs advance, any dataset works, batches reach the device."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import loadwise
from loadwise.errors import ConfigError
from loadwise.loading import DataLoaderConfig


class Squares(Dataset):
    """A plain map-style dataset with no get_batch: the per-sample path."""

    def __len__(self) -> int:
        return 50

    def __getitem__(self, i: int) -> tuple[int, int]:
        return i, i * i


def test_config_ranges_and_unknown_options() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        DataLoaderConfig(batch_size=0)
    with pytest.raises(ConfigError, match="num_workers"):
        DataLoaderConfig(num_workers=-1)
    with pytest.raises(ConfigError, match="unknown loader option.*batch_size"):
        DataLoaderConfig().with_options(batchsize=3)
    cfg = DataLoaderConfig(num_workers=2)
    assert cfg.resolved_persistent_workers and not cfg.resolved_pin_memory


def test_set_epoch_replays_an_epoch(arrays_packed: Path) -> None:
    loader = loadwise.loader(loadwise.open(arrays_packed, "lazy"), 64, seed=5)
    first = [b["index"].tolist() for b in loader]
    second = [b["index"].tolist() for b in loader]
    loader.set_epoch(0)
    assert [b["index"].tolist() for b in loader] == first != second
    assert loader.epoch == 0 and len(loader) == 5


def test_no_shuffle_and_drop_last(arrays_packed: Path) -> None:
    loader = loadwise.loader(
        loadwise.open(arrays_packed, "eager"), 64, shuffle=False, drop_last=True
    )
    indices = [b["index"].tolist() for b in loader]
    assert len(indices) == len(loader) == 4
    assert indices[0] == list(range(64))


def test_plain_dataset_uses_the_same_seeded_order(arrays_packed: Path) -> None:
    batches = list(loadwise.loader(Squares(), 8, seed=5, num_workers=2))
    seen = torch.cat([b[0] for b in batches])
    assert sorted(seen.tolist()) == list(range(50))
    assert seen.tolist() == epoch_order_of(50, 5)
    assert all(torch.equal(b[1], b[0] ** 2) for b in batches)


def epoch_order_of(n: int, seed: int) -> list[int]:
    from loadwise.sampling import epoch_order

    return epoch_order(n, seed, 0).tolist()


def test_per_sample_path_when_not_memory_efficient(arrays_packed: Path) -> None:
    ds = loadwise.open(arrays_packed, "lazy")
    config = DataLoaderConfig(batch_size=10, memory_efficient=False, generator_seed=3)
    slow = [b["index"].tolist() for b in loadwise.loader(ds, config=config)]
    fast = [
        b["index"].tolist()
        for b in loadwise.loader(ds, config=config.with_options(memory_efficient=True))
    ]
    assert slow == fast


def test_custom_collate_and_sampler(arrays_packed: Path) -> None:
    ds = loadwise.open(arrays_packed, "lazy")
    collate = lambda rows: [r["name"] for r in rows]  # noqa: E731
    names = list(
        loadwise.loader(
            ds, config=DataLoaderConfig(batch_size=4, collate_fn=collate, shuffle=False)
        )
    )
    assert names[0] == ["sample-0", "sample-1", "sample-2", "sample-3"]
    reverse = list(range(len(ds)))[::-1]
    config = DataLoaderConfig(batch_size=100, custom_sampler=reverse, collate_fn=collate)
    assert next(iter(loadwise.loader(ds, config=config)))[0] == "sample-299"


def test_device_transfer_and_stats(arrays_packed: Path, caplog: pytest.LogCaptureFixture) -> None:
    ds = loadwise.open(arrays_packed, "eager")
    config = DataLoaderConfig(batch_size=100, log_loading_stats=True, device="cpu")
    loader = loadwise.loader(ds, config=config)
    with caplog.at_level(logging.INFO, logger="loadwise"):
        batches = list(loader)
    assert all(b["image"].device == torch.device("cpu") for b in batches)
    (stats,) = loader.get_stats()
    assert (stats.epoch, stats.batches, stats.samples) == (0, 3, 300)
    assert stats.samples_per_second > 0 and 0 <= stats.wait_seconds <= stats.seconds
    assert any("epoch 0: 3 batches, 300 samples" in r.message for r in caplog.records)


def test_streaming_loader_follows_block_order(arrays_packed: Path) -> None:
    ds = loadwise.open(arrays_packed, "streaming")
    got = torch.cat([b["index"] for b in loadwise.loader(ds, 64, seed=2)]).numpy()
    assert np.array_equal(got, ds.order(0, seed=2))


def test_zero_workers_fetch_batches_without_the_dataloader(
    arrays_packed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_workers = [b["index"].tolist() for b in loadwise.loader(
        loadwise.open(arrays_packed, "lazy"), 64, seed=3, num_workers=2
    )]  # fmt: skip

    def refuse(self: object) -> None:
        raise AssertionError("a 0-worker batched loader iterated its DataLoader")

    monkeypatch.setattr(torch.utils.data.DataLoader, "__iter__", refuse)
    direct = loadwise.loader(loadwise.open(arrays_packed, "lazy"), 64, seed=3)
    assert [b["index"].tolist() for b in direct] == with_workers
    state = direct.state_dict()
    assert state["position"] == 0 and state["epoch"] == 1  # positions still counted
