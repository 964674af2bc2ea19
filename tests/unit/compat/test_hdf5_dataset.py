"""``HDF5Dataset``: the documents' items, safe with DataLoader workers, batched, every mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.scientific import columns, write_hdf5
from torch.utils.data import DataLoader

import loadwise
from loadwise.compat import DataLoaderConfig, DataLoaderFactory, HDF5Dataset
from loadwise.errors import SourceError

pytest.importorskip("h5py")


@pytest.fixture
def h5(tmp_path: Path) -> Path:
    return write_hdf5(tmp_path / "data.h5")


def test_items_are_scaled_float_images_and_int_labels(h5: Path) -> None:
    dataset = HDF5Dataset(h5)
    image, label = dataset[5]
    assert image.dtype == torch.float32 and tuple(image.shape) == (3, 6, 5)
    np.testing.assert_allclose(image.numpy(), columns()["images"][5] / 255.0, rtol=1e-6)
    assert label == int(columns()["labels"][5]) and type(label) is int
    assert len(dataset) == 300 and dataset.loading_mode.value == "lazy"


@pytest.mark.filterwarnings("ignore:This DataLoader will create 4 worker processes")  # 2 cores
def test_safe_with_four_forked_workers_after_the_parent_read(h5: Path) -> None:
    dataset = HDF5Dataset(h5)
    dataset[0]  # the parent's handle is open before the workers fork
    seen = {}
    for images, labels in DataLoader(dataset, batch_size=20, num_workers=4):
        for image, label in zip(images, labels, strict=True):
            seen[int(round(float(image.sum()) * 255))] = int(label)
    expected = columns()
    want = {
        int(expected["images"][i].sum(dtype=np.int64)): int(expected["labels"][i])
        for i in range(300)
    }
    assert seen == want


def test_the_batched_path_through_loadwise_loader(h5: Path) -> None:
    dataset = HDF5Dataset(h5, transform=lambda image: image * 2)
    images, labels = dataset.get_batch([3, 1, 3])
    np.testing.assert_allclose(images[1].numpy(), columns()["images"][1] / 255.0 * 2, rtol=1e-6)
    assert labels.tolist() == columns()["labels"][[3, 1, 3]].tolist()
    batches = list(loadwise.loader(HDF5Dataset(h5), 64, seed=0))
    assert sum(len(labels) for _, labels in batches) == 300


@pytest.mark.parametrize("mode", ["eager", "cached", "streaming", "auto"])
def test_every_loading_mode_gives_the_same_items(h5: Path, mode: str) -> None:
    dataset = HDF5Dataset(h5, loading_mode=mode)
    images, labels = dataset.get_batch(np.arange(300))
    np.testing.assert_allclose(images.numpy(), columns()["images"] / 255.0, rtol=1e-6)
    assert labels.tolist() == columns()["labels"].tolist()


def test_a_missing_dataset_name_lists_the_available_ones(h5: Path) -> None:
    with pytest.raises(SourceError, match=r"no array `pixels`.*images \(300, 3, 6, 5\) uint8"):
        HDF5Dataset(h5, dataset_name="pixels")


def test_the_factory_honours_memory_efficient_and_max_memory_usage(h5: Path) -> None:
    for efficient in (True, False):
        config = DataLoaderConfig(batch_size=50, memory_efficient=efficient, max_memory_usage=0.5)
        loader = DataLoaderFactory.create_hdf5_dataloader(h5, config, loading_mode="auto")
        assert loader.dataset.loading_mode.value == "eager"  # 24 KB fits in half of RAM
        labels = torch.cat([labels for _, labels in loader])
        assert sorted(labels.tolist()) == sorted(columns()["labels"].tolist())


def test_streaming_batches_follow_the_windowed_chunk_order(h5: Path) -> None:
    dataset = HDF5Dataset(h5, loading_mode="streaming")
    loader = loadwise.loader(dataset, 16, seed=4)
    expected = dataset.data.order(0, 4, True)
    assert (
        torch.cat([labels for _, labels in loader]).tolist()
        == columns()["labels"][expected].tolist()
    )
