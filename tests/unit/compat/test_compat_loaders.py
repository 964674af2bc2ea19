"""``EfficientDataLoader`` and ``DataLoaderFactory``: every sample once per epoch, stats, errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from loadwise.compat import (
    DataLoaderConfig,
    DataLoaderFactory,
    EfficientDataLoader,
    ImageDataset,
    MemoryEfficientDataset,
)
from loadwise.errors import ConfigError

Tree = tuple[Path, list[tuple[Path, int]]]


@pytest.mark.parametrize("workers", [0, 2])
def test_every_sample_once_per_epoch(tree: Tree, workers: int) -> None:
    root, files = tree
    dataset = MemoryEfficientDataset(root, image_size=8, image_mode="L")
    config = DataLoaderConfig(batch_size=4, num_workers=workers, enable_monitoring=True)
    loader = EfficientDataLoader(dataset, config)
    assert len(loader) == math.ceil(len(files) / 4)
    orders = []
    for _ in range(2):
        seen = [i for batch in loader for i in batch["index"].tolist()]
        assert sorted(seen) == list(range(len(files)))
        orders.append(seen)
    assert orders[0] != orders[1]  # each iteration is the next epoch, reshuffled
    stats = loader.get_stats()
    assert stats["batch_size"] == 4 and stats["num_workers"] == workers
    assert stats["pin_memory"] is False and stats["num_batches"] == len(loader)
    assert [e["epoch"] for e in stats["epochs"]] == [0, 1]
    assert all(e["samples"] == len(files) and e["batches"] == len(loader) for e in stats["epochs"])
    assert stats["samples_per_second"] == stats["epochs"][-1]["samples_per_second"] > 0


def test_image_batches_and_stats_without_monitoring(tree: Tree) -> None:
    root, files = tree
    dataset = ImageDataset(root, image_size=16)
    loader = EfficientDataLoader(dataset, DataLoaderConfig(batch_size=8, shuffle=False))
    batches = list(loader)
    images, labels = batches[0]
    assert images.shape == (8, 3, 16, 16) and images.dtype == torch.float32  # normalised
    assert torch.cat([b[1] for b in batches]).tolist() == [label for _, label in files]
    stats = loader.get_stats()
    assert stats["epochs"] == [] and stats["samples_per_second"] is None
    assert stats["num_samples"] == len(files)


def test_default_config_and_plain_torch_dataset() -> None:
    data = TensorDataset(torch.arange(10), torch.arange(10) * 2)
    loader = EfficientDataLoader(data)
    assert loader.config == DataLoaderConfig()
    xs, ys = next(iter(loader))
    assert len(xs) == 10 and ys.equal(xs * 2)
    assert isinstance(loader.dataloader, torch.utils.data.DataLoader)


def test_factory_applies_options(tree: Tree) -> None:
    dataset = ImageDataset(tree[0], image_size=8)
    base = DataLoaderConfig(batch_size=2, drop_last=True)
    loader = DataLoaderFactory.create_dataloader(dataset, base, shuffle=False, batch_size=5)
    assert isinstance(loader, EfficientDataLoader)
    assert (loader.config.batch_size, loader.config.shuffle, loader.config.drop_last) == (
        5,
        False,
        True,
    )
    assert len(loader) == len(dataset) // 5


def test_factory_refuses_unknown_options(tree: Tree) -> None:
    dataset = ImageDataset(tree[0], image_size=8)
    with pytest.raises(ConfigError, match=r"\['batchsize'\].*batch_size.*num_workers"):
        DataLoaderFactory.create_dataloader(dataset, batchsize=4)
