"""``ImageDataset``, ``MemoryEfficientDataset`` and ``BaseDataset`` against the files on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import loadwise
from loadwise.access import budget
from loadwise.compat import BaseDataset, ImageDataset, LoadingMode, MemoryEfficientDataset
from loadwise.errors import ConfigError, ModeError, SampleIndexError
from loadwise.transforms import IMAGENET_MEAN, IMAGENET_STD, Normalize

Tree = tuple[Path, list[tuple[Path, int]]]


def expected_image(path: Path, height: int, width: int) -> np.ndarray:
    """The file decoded independently of loadwise: JPEG draft scaling, RGB, then torch's
    uint8 bilinear resize, antialiased when shrinking (within one level of Pillow's)."""
    with Image.open(path) as image:
        image.draft(image.mode, (width, height))
        pixels = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)[None]
    shrinks = height < pixels.shape[2] or width < pixels.shape[3]
    out = F.interpolate(pixels, (height, width), mode="bilinear", antialias=shrinks)
    return np.ascontiguousarray(out[0].numpy())


def normalized(pixels: np.ndarray) -> np.ndarray:
    """The documents' default transform on decoded pixels: /255, minus mean, over std."""
    mean = np.array(IMAGENET_MEAN).reshape(-1, 1, 1)
    std = np.array(IMAGENET_STD).reshape(-1, 1, 1)
    return (pixels / 255 - mean) / std


def test_items_match_the_files(tree: Tree) -> None:
    root, files = tree
    dataset = ImageDataset(root, image_size=(20, 28), normalize=False)
    assert len(dataset) == len(files)
    assert dataset.classes == ["cat", "dog", "emu"]
    for i, (path, label) in enumerate(files):
        image, got = dataset[i]
        assert isinstance(got, int) and got == label
        assert image.dtype == torch.uint8 and image.shape == (3, 20, 28)
        assert np.array_equal(image.numpy(), expected_image(path, 20, 28)), path.name
    with pytest.raises(SampleIndexError):
        dataset[len(files)]


def test_default_output_is_imagenet_normalised_float32(tree: Tree) -> None:
    root, files = tree
    dataset = ImageDataset(root, image_size=(20, 28))
    for i, (path, _) in enumerate(files):
        image, _ = dataset[i]
        assert image.dtype == torch.float32 and image.shape == (3, 20, 28)
        want = normalized(expected_image(path, 20, 28))
        np.testing.assert_allclose(image.numpy(), want, rtol=1e-5, atol=1e-5, err_msg=path.name)
    images, _ = dataset.get_batch([0, 3])
    assert images.dtype == torch.float32 and images[1].equal(dataset[3][0])


class CountingNormalize(Normalize):
    """ImageNet normalisation that notes the shape of every batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        self.shapes.append(tuple(batch["image"].shape))
        return super().__call__(batch)


def test_normalisation_runs_once_per_batch_not_per_sample(tree: Tree) -> None:
    dataset = ImageDataset(tree[0], image_size=8, loading_mode="eager")
    dataset.normalization = counting = CountingNormalize()
    assert len(dataset.__getitems__([0, 1, 2, 3])) == 4
    dataset.get_batch([4, 5, 6])
    assert counting.shapes == [(4, 3, 8, 8), (3, 3, 8, 8)]


def test_gray_images_are_normalised_with_one_channel(tree: Tree) -> None:
    dataset = ImageDataset(tree[0], image_size=12, image_mode="L")
    raw = ImageDataset(tree[0], image_size=12, image_mode="L", normalize=False)
    image, plain = dataset[2][0], raw[2][0]
    mean, std = sum(IMAGENET_MEAN) / 3, sum(IMAGENET_STD) / 3
    torch.testing.assert_close(image, (plain.float() / 255 - mean) / std)


def test_int_size_and_gray_mode(tree: Tree) -> None:
    root, files = tree
    dataset = ImageDataset(root, image_size=12, image_mode="L")
    assert dataset[0][0].shape == (1, 12, 12)
    assert [label for _, label in files] == [dataset[i][1] for i in range(len(dataset))]


def test_batches_are_one_gather_of_the_items(tree: Tree) -> None:
    root, _ = tree
    dataset = ImageDataset(root, image_size=16, loading_mode="eager")
    picks = [5, 0, 13, 5]
    items = dataset.__getitems__(picks)
    images, labels = dataset.get_batch(picks)
    assert images.shape == (4, 3, 16, 16) and labels.dtype == torch.int64
    for (image, label), batch_image, batch_label in zip(items, images, labels, strict=True):
        assert image.equal(batch_image) and label == int(batch_label)
    assert dataset[13][0].equal(images[2])


def test_transform_applies_to_items_and_batches(tree: Tree) -> None:
    root, _ = tree
    dataset = ImageDataset(
        root, image_size=8, transform=lambda im: im.float() / 255, normalize=False
    )
    image, _ = dataset[1]
    assert image.dtype == torch.float32 and float(image.max()) <= 1.0
    images, labels = dataset.get_batch(np.array([1, 2]))
    assert images.shape == (2, 3, 8, 8) and images[0].equal(image)
    assert labels.tolist() == [dataset[1][1], dataset[2][1]]


@pytest.mark.parametrize("mode", ["eager", "lazy", "cached", "streaming", LoadingMode.LAZY])
def test_every_mode_serves_the_same_items(tree: Tree, mode: str) -> None:
    root, _ = tree
    reference = ImageDataset(root, image_size=16, loading_mode="eager")
    dataset = ImageDataset(root, image_size=16, loading_mode=mode, cache_size=1 << 20)
    assert dataset.loading_mode == LoadingMode(mode)
    for i in (0, 7, len(dataset) - 1):
        assert dataset[i][0].equal(reference[i][0]) and dataset[i][1] == reference[i][1]
    dataset.close()


def test_packed_dataset_given_as_is(tree: Tree, tmp_path: Path) -> None:
    root, files = tree
    packed = tmp_path / "packed"
    loadwise.pack(root, packed, image_size=(10, 14), image_mode="RGB", progress=False)
    dataset = ImageDataset(packed, image_size=(10, 14))
    assert len(dataset) == len(files) and dataset[0][0].shape == (3, 10, 14)
    with pytest.raises(ConfigError, match=r"image_size=\(10, 14\)"):
        ImageDataset(packed)  # default 224 x 224 does not match
    with pytest.raises(ConfigError, match="image_mode='RGB'"):
        ImageDataset(packed, image_size=(10, 14), image_mode="L")


def test_unknown_mode_lists_the_valid_ones(tree: Tree) -> None:
    with pytest.raises(ModeError, match="eager, lazy"):
        ImageDataset(tree[0], image_size=8, loading_mode="fast")


def test_memory_efficient_picks_lazy_when_memory_is_short(tree: Tree, monkeypatch) -> None:
    root, files = tree
    monkeypatch.setattr(budget, "available_memory", lambda: 1_000)
    dataset = MemoryEfficientDataset(root, max_memory_usage=0.5, image_size=16, image_mode="RGB")
    assert dataset.mode == "lazy" and dataset.loading_mode == LoadingMode.LAZY
    assert "memory-mapped" in dataset.reason
    sample = dataset[2]
    assert set(sample) == {"image", "label", "path", "index"}
    assert sample["path"] == str(files[2][0].relative_to(root)) and int(sample["index"]) == 2


def test_memory_efficient_picks_eager_when_it_fits(tree: Tree, monkeypatch) -> None:
    monkeypatch.setattr(budget, "available_memory", lambda: 1 << 40)
    dataset = MemoryEfficientDataset(tree[0], max_memory_usage=0.01, image_size=16, image_mode="L")
    assert dataset.mode == "eager" and "held in shared RAM" in dataset.reason
    assert dataset[0]["image"].shape == (1, 16, 16)


def test_memory_efficient_explicit_mode_and_bad_fraction(tree: Tree) -> None:
    dataset = MemoryEfficientDataset(tree[0], loading_mode="cached", image_size=8, image_mode="L")
    assert dataset.mode == "cached" and "asked for" in dataset.reason
    for fraction in (0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="max_memory_usage"):
            MemoryEfficientDataset(tree[0], max_memory_usage=fraction)


def test_base_dataset_items_are_sample_dicts(tree: Tree, tmp_path: Path) -> None:
    root, files = tree
    loadwise.pack(root, tmp_path / "p", image_size=8, image_mode="L", progress=False)
    with BaseDataset(tmp_path / "p", "lazy", transform=lambda row: row["label"]) as dataset:
        assert len(dataset) == len(files)
        assert [int(x) for x in dataset.__getitems__([0, 20])] == [files[0][1], files[20][1]]
    assert dataset.packed._storage is None  # closed
