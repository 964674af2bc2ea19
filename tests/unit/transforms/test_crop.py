"""Seeded batched random-resized-crop + flip: a pure function of (seed, epoch, sample index)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tests.contracts.resume import assert_resumes_exactly

import loadwise
from loadwise.errors import ConfigError
from loadwise.transforms import CropSpec, RandomResizedCrop, resize_images
from loadwise.transforms.crop import crop_resize


@pytest.fixture(scope="module")
def rgb_packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    dest = tmp_path_factory.mktemp("rgb") / "rgb.loadwise"
    images = rng.integers(0, 256, (48, 3, 20, 28), dtype=np.uint8)
    loadwise.pack({"image": images, "label": np.arange(48) % 4}, dest, progress=False)
    return dest


def test_boxes_depend_on_seed_epoch_and_index_only() -> None:
    spec = CropSpec(seed=5)
    ids = np.array([3, 17, 4, 99, 250])
    boxes, flips = spec.boxes(2, ids, 40, 60)
    again, again_flips = spec.boxes(2, ids[::-1], 40, 60)  # another batch order
    np.testing.assert_array_equal(boxes, again[::-1])
    np.testing.assert_array_equal(flips, again_flips[::-1])
    other, _ = spec.boxes(3, ids, 40, 60)
    assert not np.array_equal(boxes, other), "a new epoch draws new crops"
    assert not np.array_equal(boxes, CropSpec(seed=6).boxes(2, ids, 40, 60)[0])


def test_boxes_follow_torchvisions_rule() -> None:
    spec = CropSpec(scale=(0.3, 0.9), ratio=(0.5, 2.0))
    boxes, flips = spec.boxes(0, np.arange(2000), 64, 96)
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (h >= 1).all() and (w >= 1).all()
    assert (top + h <= 64).all() and (left + w <= 96).all()
    area = h * w / (64 * 96)
    assert area.min() >= 0.28 and area.max() <= 0.92  # rounding of h and w aside
    assert (w / h).min() >= 0.45 and (w / h).max() <= 2.2
    assert 0.45 < flips.mean() < 0.55
    assert len({(int(a), int(b)) for a, b in zip(top, left, strict=True)}) > 300


def test_impossible_ratios_fall_back_to_the_centre_crop() -> None:
    boxes, _ = CropSpec(scale=(1.0, 1.0), ratio=(3.0, 3.0)).boxes(0, np.arange(4), 30, 30)
    np.testing.assert_array_equal(boxes, [[10, 0, 10, 30]] * 4)


def test_crop_resize_equals_each_crop_resized_alone() -> None:
    images = torch.randint(0, 256, (6, 3, 20, 28), dtype=torch.uint8)
    boxes, flips = CropSpec(seed=1).boxes(0, np.arange(6), 20, 28)
    flips[:3] = [True, False, True]
    out = crop_resize(images, boxes, flips, 16)
    for row, (top, left, h, w) in enumerate(boxes.tolist()):
        alone = resize_images(images[row, :, top : top + h, left : left + w], 16)
        torch.testing.assert_close(out[row], alone.flip(-1) if flips[row] else alone)


def test_the_loader_gives_the_epoch_and_workers_change_nothing(rgb_packed: Path) -> None:
    ds = loadwise.open(rgb_packed, "eager")
    crop = RandomResizedCrop(12, seed=4)

    def run(workers: int) -> list[list[torch.Tensor]]:
        loader = loadwise.loader(ds, 8, seed=2, num_workers=workers, batch_transform=crop)
        return [[b["image"] for b in loader] for _ in range(2)]

    here, there = run(0), run(2)
    for epoch in range(2):
        torch.testing.assert_close(torch.cat(here[epoch]), torch.cat(there[epoch]))
    assert here[0][0].shape == (8, 3, 12, 12)
    assert not torch.equal(torch.cat(here[0]).sum(0), torch.cat(here[1]).sum(0))


def _index_and_pixels(batch: dict[str, Any]) -> list[Any]:
    return [
        (int(i), im.numpy().tobytes()) for i, im in zip(batch["index"], batch["image"], strict=True)
    ]


def test_resume_gives_the_same_crops(rgb_packed: Path) -> None:
    ds = loadwise.open(rgb_packed, "eager")
    crop = RandomResizedCrop(10, seed=9)
    assert_resumes_exactly(
        lambda **kw: loadwise.loader(ds, seed=1, batch_transform=crop, **kw), key=_index_and_pixels
    )


def test_without_epoch_or_index_the_crop_says_what_it_needs() -> None:
    images = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ConfigError, match="needs `index` and `epoch`"):
        RandomResizedCrop(4)({"image": images, "index": torch.arange(2)})
    with pytest.raises(ConfigError, match="scale"):
        CropSpec(scale=(0.5, 1.5))
    with pytest.raises(ConfigError, match="flip"):
        CropSpec(flip=2)
