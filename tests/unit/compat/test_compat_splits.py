"""``create_dataloaders`` and its split views: disjoint, complete, stratified, seeded."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadwise.compat import ImageDataset, create_dataloaders
from loadwise.compat.splits import SplitView, stratified_split
from loadwise.errors import ConfigError, SampleIndexError

Tree = tuple[Path, list[tuple[Path, int]]]
# the `tree` fixture's classes: cat 7, dog 5, emu 9; with val_split 0.2 each of val and
# test takes 0.2 * n per class, rounded half up: 1 + 1 + 2
HELD_OUT_PER_CLASS = [1, 1, 2]


def contents(loader: Any) -> list[tuple[str, int]]:
    """(hash of the image, label) of every sample the loader yields in one epoch."""
    out = []
    for images, labels in loader:
        for image, label in zip(images, labels.tolist(), strict=True):
            out.append((hashlib.sha1(image.numpy().tobytes()).hexdigest(), label))
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_one_tree_is_split_disjoint_complete_stratified(tree: Tree, workers: int) -> None:
    root, files = tree
    loaders = create_dataloaders(root, batch_size=3, img_size=16, num_workers=workers, seed=5)
    indices = [loader.dataset.indices for loader in loaders]
    labels = np.array([label for _, label in files])
    assert [len(i) for i in indices] == [len(files) - 8, 4, 4]
    assert sorted(np.concatenate(indices).tolist()) == list(range(len(files)))
    for held in indices[1:]:
        assert np.bincount(labels[held], minlength=3).tolist() == HELD_OUT_PER_CLASS
    whole = ImageDataset(root, image_size=16)
    everything = contents([whole.get_batch(np.arange(len(whole)))])
    seen = [pair for loader in loaders for pair in contents(loader)]
    assert sorted(seen) == sorted(everything) and len(set(everything)) == len(files)
    for loader, split in zip(loaders, indices, strict=True):
        assert sorted(contents(loader)) == sorted(everything[i] for i in split)


def test_same_seed_same_split(tree: Tree) -> None:
    root, _ = tree
    first = [ld.dataset.indices for ld in create_dataloaders(root, img_size=8, seed=1)]
    again = [ld.dataset.indices for ld in create_dataloaders(root, img_size=8, seed=1)]
    other = [ld.dataset.indices for ld in create_dataloaders(root, img_size=8, seed=2)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_only_train_shuffles(tree: Tree) -> None:
    train, val, test = create_dataloaders(tree[0], batch_size=2, img_size=8)
    assert (train.config.shuffle, val.config.shuffle, test.config.shuffle) == (True, False, False)
    base = ImageDataset(tree[0], image_size=8)
    expected = [base[i][1] for i in val.dataset.indices]
    assert [label for _, label in contents(val)] == expected
    assert val.dataset.classes == ["cat", "dog", "emu"]


def test_train_val_test_folders_are_used(tmp_path: Path, make_tree) -> None:
    root = tmp_path / "data"
    train_files = make_tree(root / "train", {"a": 6, "b": 4}, seed=1)
    val_files = make_tree(root / "val", {"a": 2, "b": 1}, seed=2)
    test_files = make_tree(root / "test", {"a": 1, "b": 3}, seed=3)
    train, val, test = create_dataloaders(root, batch_size=4, img_size=8)
    assert [len(ld.dataset) for ld in (train, val, test)] == [10, 3, 4]
    assert [label for _, label in contents(val)] == [label for _, label in val_files]
    assert [label for _, label in contents(test)] == [label for _, label in test_files]
    assert sorted(label for _, label in contents(train)) == sorted(lb for _, lb in train_files)
    roots = {ld.dataset.base.packed.root for ld in (train, val, test)}
    assert len(roots) == 3


def test_missing_test_is_split_off_train(tmp_path: Path, make_tree) -> None:
    root = tmp_path / "data"
    make_tree(root / "train", {"a": 10, "b": 5}, seed=1)
    make_tree(root / "val", {"a": 2, "b": 2}, seed=2)
    train, val, test = create_dataloaders(root, img_size=8, val_split=0.2)
    assert len(val.dataset) == 4
    assert test.dataset.base is train.dataset.base
    assert (len(train.dataset), len(test.dataset)) == (12, 3)
    assert not set(train.dataset.indices) & set(test.dataset.indices)


def test_classes_must_match_across_folders(tmp_path: Path, make_tree) -> None:
    root = tmp_path / "data"
    make_tree(root / "train", {"a": 3, "b": 3})
    make_tree(root / "val", {"a": 2})
    with pytest.raises(ConfigError, match="same class folders"):
        create_dataloaders(root, img_size=8)


@pytest.mark.parametrize("kwargs", [{"val_split": 0.5}, {"val_split": -0.1}, {"seed": -1}])
def test_bad_arguments(tree: Tree, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        create_dataloaders(tree[0], img_size=8, **kwargs)


def test_stratified_split_is_a_pure_partition() -> None:
    labels = np.random.default_rng(0).integers(0, 5, size=200)
    rest, val, test = stratified_split(labels, 0.1, seed=7, held_out=2)
    assert sorted(np.concatenate([rest, val, test]).tolist()) == list(range(200))
    for label in range(5):
        half_up = math.floor(0.1 * (labels == label).sum() + 0.5)
        assert (labels[val] == label).sum() == (labels[test] == label).sum() == half_up
    again = stratified_split(labels, 0.1, seed=7, held_out=2)
    assert all(np.array_equal(a, b) for a, b in zip([rest, val, test], again, strict=True))
    tiny = stratified_split(np.array([0, 1, 1]), 0.4, seed=0, held_out=2)
    assert [p.tolist() for p in tiny] == [[0, 1, 2], [], []]  # every class keeps one for train
    (everything,) = stratified_split(labels, 0.3, seed=0, held_out=0)
    assert everything.tolist() == list(range(200))


def test_split_view_maps_indices(tree: Tree) -> None:
    base = ImageDataset(tree[0], image_size=8)
    view = SplitView(base, [4, 9, 2])
    assert len(view) == 3 and view[1][1] == base[9][1] and view[-1][0].equal(base[2][0])
    images, labels = view.get_batch([2, 0])
    assert images[0].equal(base[2][0]) and labels.tolist() == [base[2][1], base[4][1]]
    with pytest.raises(SampleIndexError, match="out of range"):
        view.get_batch([3])
