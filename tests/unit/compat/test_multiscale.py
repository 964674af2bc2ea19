"""MultiScaleDataset as the documents use it: base images resized on demand, scale groups
within a memory budget, the same gradients as the legacy all-scales items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

import loadwise
from loadwise.compat import MultiScaleDataset, ScaleGroup, create_dataloaders
from loadwise.compat.scale_groups import StepPeak, group_scales_by_memory, measure_bytes_per_pixel
from loadwise.errors import ConfigError
from loadwise.testing import make_photo_folder

SCALES = [16, 32, 48]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> loadwise.access.base.PackedBase:
    """Real photo crops (scikit-image's samples, or rendered scenes), packed as uint8."""
    root = tmp_path_factory.mktemp("ms")
    folder = make_photo_folder(root / "photos", classes=3, per_class=8, size=40, seed=2)
    loadwise.pack(folder.root, root / "packed", progress=False)
    return loadwise.open(root / "packed", "eager")


def test_items_as_the_documents_have_them(photos: loadwise.access.base.PackedBase) -> None:
    efficient = MultiScaleDataset(photos, SCALES)
    item = efficient[3]
    assert item["base_image"].shape == (3, 40, 40) and item["base_image"].dtype == torch.uint8
    assert item["scales"].tolist() == SCALES and item["label"] == photos[3]["label"]
    legacy = MultiScaleDataset(photos, SCALES, memory_efficient=False)
    old = legacy[3]
    assert {k for k in old if k.startswith("image_")} == {f"image_{s}" for s in SCALES}
    for s in SCALES:
        assert old[f"image_{s}"].shape == (3, s, s) and old[f"image_{s}"].dtype == torch.float32
        torch.testing.assert_close(
            efficient.get_scale_image(item["base_image"], s), old[f"image_{s}"]
        )


@pytest.mark.parametrize("augment", [False, True])
def test_both_modes_give_the_same_pixels(
    photos: loadwise.access.base.PackedBase, augment: bool
) -> None:
    efficient = MultiScaleDataset(photos, SCALES, augment=augment, seed=1)
    legacy = MultiScaleDataset(photos, SCALES, augment=augment, memory_efficient=False, seed=1)
    idx = np.array([5, 0, 17, 9])
    new, old = efficient.get_batch(idx), legacy.get_batch(idx)
    groups = [ScaleGroup((16, 32), 4), ScaleGroup((48,), 3)]
    parts = list(efficient.scale_batches(new, groups))
    assert [(p.scale, len(p.images)) for p in parts] == [(16, 4), (32, 4), (48, 3), (48, 1)]
    for scale in SCALES:
        made = torch.cat([p.images for p in parts if p.scale == scale])
        torch.testing.assert_close(made, old[f"image_{scale}"])
    if augment:  # one view per sample at every scale, another one the next epoch
        legacy.set_epoch(1)
        assert not torch.equal(legacy.get_batch(idx)["image_16"], old["image_16"])


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    )  # fmt: skip


def test_scale_groups_and_micro_batches_give_the_legacy_gradients(
    photos: loadwise.access.base.PackedBase,
) -> None:
    idx = np.arange(12)
    loss_fn = nn.CrossEntropyLoss()
    legacy = MultiScaleDataset(photos, SCALES, memory_efficient=False).get_batch(idx)
    model = _model().double()  # in float64 the two sums differ by rounding alone
    sum(loss_fn(model(legacy[f"image_{s}"].double()), legacy["label"]) for s in SCALES).backward()  # type: ignore[union-attr]
    want = [p.grad.clone() for p in model.parameters()]  # type: ignore[union-attr]

    dataset = MultiScaleDataset(photos, SCALES)
    budget = 12 * 36 * 36 * 40  # 48 fits 6 at a time at 40 bytes per pixel
    groups = group_scales_by_memory(SCALES, 12, budget, bytes_per_pixel=40)
    assert groups == [ScaleGroup((16, 32), 12), ScaleGroup((48,), 6)]
    model = _model().double()
    for part in dataset.scale_batches(dataset.get_batch(idx), groups):
        (loss_fn(model(part.images.double()), part.labels) * part.weight).backward()
    for got, expected in zip((p.grad for p in model.parameters()), want, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_the_documents_flow_through_create_dataloaders(tmp_path: Path) -> None:
    folder = make_photo_folder(tmp_path / "photos", classes=3, per_class=6, size=40, seed=3)
    train, _, _ = create_dataloaders(folder.root, batch_size=4, img_size=32, val_split=0.2)
    split = train.dataset
    as_subset = Subset(split.dataset, split.indices.tolist())
    torch.testing.assert_close(as_subset[1][0], split[1][0])
    multi = MultiScaleDataset(split.dataset, [16, 32], augment=True, memory_efficient=True)
    batch = next(iter(DataLoader(multi, batch_size=4)))
    parts = list(multi.scale_batches(batch, device="cpu", epoch=0))
    assert [(p.scale, tuple(p.images.shape)) for p in parts] == [
        (16, (4, 3, 16, 16)),
        (32, (4, 3, 32, 32)),
    ]
    assert batch["base_image"].dtype == torch.float32  # ImageDataset normalised it already
    assert parts[0].images.abs().max() < 5  # resized, not normalised a second time


def test_loader_epochs_key_the_augmentation_in_workers(
    photos: loadwise.access.base.PackedBase,
) -> None:
    legacy = MultiScaleDataset(photos, [16], augment=True, memory_efficient=False)

    def run(workers: int) -> list[torch.Tensor]:
        loader = loadwise.loader(legacy, 8, seed=1, num_workers=workers)
        return [torch.cat([b["image_16"] for b in loader]) for _ in range(2)]

    here, there = run(0), run(2)
    torch.testing.assert_close(here, there)
    assert not torch.equal(here[0], here[1])


def test_group_arithmetic_and_measured_step_cost() -> None:
    groups = group_scales_by_memory([224, 448, 672], 32, 400 * 2**20, bytes_per_pixel=60)
    assert groups == [ScaleGroup((224,), 32), ScaleGroup((448,), 32), ScaleGroup((672,), 11)]
    everything = group_scales_by_memory([224, 448, 672], 32, 2**40)
    assert everything == [ScaleGroup((224, 448, 672), 32)]
    images = torch.rand(4, 3, 64, 64)
    model = _model()
    per_pixel = measure_bytes_per_pixel(lambda x: model(x).sum().backward(), images)
    assert per_pixel > 12  # the float image alone is 12 bytes a pixel
    with StepPeak() as peak:
        held = torch.ones(2**24)  # 64 MiB
        del held
    assert peak.added >= 60 * 2**20


def test_bad_scales_are_refused(photos: loadwise.access.base.PackedBase) -> None:
    for scales, message in [
        ([], "non-empty"),
        ([448, 224], r"increasing order: \[448, 224\]. Pass sorted\(scales\) = \[224, 448\]"),
        ([224, 224, 448], r"holds \[224\] more than once"),
        ([(224, 320)], r"\(224, 320\) is \(H, W\) with H != W"),
        ([0], "integer >= 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            MultiScaleDataset(photos, scales)
    assert MultiScaleDataset(photos, [(16, 16), 32]).scales == (16, 32)


def test_a_scale_above_the_base_needs_upscaling_allowed(
    photos: loadwise.access.base.PackedBase,
) -> None:
    with pytest.raises(ConfigError, match=r"scale 48 is larger than the base images \(40x40\)"):
        MultiScaleDataset(photos, SCALES, upscale=False)
    assert MultiScaleDataset(photos, [16, 32], upscale=False).scales == (16, 32)


def test_a_budget_too_small_for_one_image_says_the_figures() -> None:
    with pytest.raises(ConfigError) as info:
        group_scales_by_memory([224, 672], 32, 5 * 2**20, bytes_per_pixel=12)
    assert "5.0 MiB is too small for one image at the largest scale: 672x672" in str(info.value)
    assert "needs 5.2 MiB" in str(info.value)


def test_a_base_without_images_is_refused() -> None:
    labels_only = [{"label": 1, "caption": "x"}] * 3
    with pytest.raises(ConfigError, match=r"item 0 of the base dataset has no image.*'caption'"):
        MultiScaleDataset(labels_only, [16])
    with pytest.raises(ConfigError, match="a pair"):
        MultiScaleDataset([("a photo", 1)], [16])
    with pytest.raises(ConfigError, match="empty"):
        MultiScaleDataset([], [16])
