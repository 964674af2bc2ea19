"""The seeded data generators: layout, image format, determinism and that the content is real."""

from __future__ import annotations

import logging
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from loadwise.errors import ConfigError
from loadwise.testing import (
    OmniglotTree,
    PhotoFolder,
    glyphs,
    make_omniglot_tree,
    make_photo_folder,
    photos,
)

SMALL = {"alphabets": 3, "characters": 4, "drawings": 5}


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def ink_vectors(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Blurred ink of every drawing as unit vectors (mean removed), and its character label."""
    vectors, labels = [], []
    for label, folder in enumerate(sorted(root.glob("*/character*"))):
        for path in sorted(folder.glob("*.png")):
            blurred = Image.open(path).filter(ImageFilter.GaussianBlur(4))
            vectors.append(255.0 - np.asarray(blurred, dtype=float).ravel())
            labels.append(label)
    x = np.array(vectors)
    x -= x.mean(axis=1, keepdims=True)
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.array(labels)


@pytest.fixture(scope="module")
def omniglot(tmp_path_factory: pytest.TempPathFactory) -> OmniglotTree:
    return make_omniglot_tree(tmp_path_factory.mktemp("o") / "images", **SMALL, seed=3)


def test_omniglot_tree_has_the_omniglot_layout(omniglot: OmniglotTree) -> None:
    files = sorted(omniglot.root.rglob("*.png"))
    assert len(files) == omniglot.n_images == 3 * 4 * 5
    assert len(omniglot.alphabets) == 3 and len(set(omniglot.alphabets)) == 3
    assert sorted(p.name for p in omniglot.root.iterdir()) == sorted(omniglot.alphabets)
    assert omniglot.font
    for alphabet in omniglot.alphabets:
        characters = sorted(p.name for p in (omniglot.root / alphabet).iterdir())
        assert characters == ["character01", "character02", "character03", "character04"]
    numbers = set()
    for path in files:
        match = re.fullmatch(r"(\d{4})_(\d{2})\.png", path.name)
        assert match is not None, path.name
        numbers.add(match[1])
        assert 1 <= int(match[2]) <= 5
    assert numbers == {f"{n:04d}" for n in range(1, 13)}


def test_omniglot_drawings_are_binary_black_ink_on_white_inside_the_frame(
    omniglot: OmniglotTree,
) -> None:
    for path in sorted(omniglot.root.rglob("*.png")):
        with Image.open(path) as image:
            assert (image.size, image.mode) == ((105, 105), "L")
            pixels = np.asarray(image)
        assert set(np.unique(pixels)) == {0, 255}
        assert 0.01 < (pixels == 0).mean() < 0.4  # some ink, mostly paper
        border = np.concatenate([pixels[:2].ravel(), pixels[-2:].ravel()])
        border = np.concatenate([border, pixels[:, :2].ravel(), pixels[:, -2:].ravel()])
        assert (border == 255).all()


def test_drawings_of_a_character_look_alike_and_unlike_other_characters(
    omniglot: OmniglotTree,
) -> None:
    x, labels = ink_vectors(omniglot.root)
    corr = x @ x.T
    same = labels[:, None] == labels[None, :]
    within = corr[same & ~np.eye(len(labels), dtype=bool)].mean()
    across = corr[~same].mean()
    assert within > across + 0.15, (within, across)


def test_omniglot_is_byte_identical_for_a_seed_whatever_the_workers(tmp_path: Path) -> None:
    one = make_omniglot_tree(tmp_path / "a", **SMALL, size=64, seed=5, workers=1)
    two = make_omniglot_tree(tmp_path / "b", **SMALL, size=64, seed=5, workers=2)
    assert one.alphabets == two.alphabets
    first, second = tree_bytes(one.root), tree_bytes(two.root)
    assert len(first) == 60 and first == second


def test_another_seed_draws_other_images(tmp_path: Path) -> None:
    first = tree_bytes(make_omniglot_tree(tmp_path / "a", **SMALL, size=64, seed=1).root)
    second = tree_bytes(make_omniglot_tree(tmp_path / "b", **SMALL, size=64, seed=2).root)
    assert first.keys() == second.keys()
    assert sum(first[k] != second[k] for k in first) >= 0.9 * len(first)


def test_without_fonts_it_warns_and_draws_pillows_default_font(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(glyphs, "find_fonts", lambda: [])
    with caplog.at_level(logging.WARNING, logger="loadwise.testing"):
        tree = make_omniglot_tree(tmp_path / "o", alphabets=4, characters=20, drawings=2)
    assert any("no fonts found" in r.getMessage() for r in caplog.records)
    assert tree.font == glyphs.DEFAULT_FONT
    assert len(tree.alphabets) == 4 and any("Pairs" in a for a in tree.alphabets)
    files = sorted(tree.root.rglob("*.png"))
    assert len(files) == tree.n_images == 160
    inked = [(np.asarray(Image.open(p)) == 0).mean() for p in files]
    assert min(inked) > 0.005
    assert len({p.read_bytes() for p in files}) == len(files)


@pytest.mark.parametrize(
    ("argument", "value"),
    [("alphabets", 0), ("characters", -1), ("drawings", 0), ("size", 8), ("seed", -1),
     ("workers", 0), ("drawings", 2.5), ("alphabets", True)],
)  # fmt: skip
def test_omniglot_bad_arguments_name_the_argument(
    tmp_path: Path, argument: str, value: object
) -> None:
    with pytest.raises(ConfigError, match=f"`{argument}` must be"):
        make_omniglot_tree(tmp_path / "o", **{**SMALL, argument: value})  # type: ignore[arg-type]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("make", [make_omniglot_tree, make_photo_folder])
def test_a_non_empty_root_is_refused_and_left_alone(tmp_path: Path, make: object) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="`root`"):
        make(tmp_path)  # type: ignore[operator]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_photo_folder_layout_and_format(tmp_path: Path) -> None:
    folder = make_photo_folder(tmp_path / "p", classes=3, per_class=4, size=48)
    assert isinstance(folder, PhotoFolder) and folder.n_images == 12
    assert sorted(p.name for p in folder.root.iterdir()) == list(folder.classes)
    assert folder.source == "rendered"  # scikit-image is not a dependency
    for name in folder.classes:
        assert sorted(p.name for p in (folder.root / name).iterdir()) == [
            f"{i:05d}.jpg" for i in range(4)
        ]
    for path in folder.root.rglob("*.jpg"):
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (48, 48))


def test_photo_folder_is_deterministic_and_seeded(tmp_path: Path) -> None:
    args = {"classes": 3, "per_class": 60, "size": 32}
    one = tree_bytes(make_photo_folder(tmp_path / "a", **args, seed=4, workers=1).root)
    two = tree_bytes(make_photo_folder(tmp_path / "b", **args, seed=4, workers=2).root)
    other = tree_bytes(make_photo_folder(tmp_path / "c", **args, seed=5).root)
    assert len(one) == 180 and one == two
    assert all(one[k] != other[k] for k in one)


def test_photo_classes_are_told_apart_by_colour_alone(tmp_path: Path) -> None:
    folder = make_photo_folder(tmp_path / "p", classes=10, per_class=8, size=32)
    feats, labels = [], []
    for label, name in enumerate(folder.classes):
        for path in sorted((folder.root / name).iterdir()):
            rgb = np.asarray(Image.open(path), dtype=float).reshape(-1, 3)
            feats.append(np.concatenate([rgb.mean(0), rgb.std(0)]))
            labels.append(label)
    x, y = np.array(feats), np.array(labels)
    centroids = np.array([x[y == k].mean(0) for k in range(10)])
    nearest = np.argmin(((x[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (nearest == y).mean() >= 0.9


def test_photo_folder_crops_scikit_image_photos_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(0)
    data = types.ModuleType("skimage.data")
    fakes = {
        "astronaut": lambda: rng.integers(0, 256, (80, 90, 3), dtype=np.uint8),
        "camera": lambda: np.full((70, 70), 50, dtype=np.uint8),
        "coffee": lambda: np.ones((60, 60, 4)),
        "moon": lambda: np.arange(64 * 64, dtype=np.uint16).reshape(64, 64),
        "rocket": lambda: 1 / 0,  # a photo that cannot be had is skipped
    }
    for name, fake in fakes.items():
        setattr(data, name, fake)
    skimage = types.ModuleType("skimage")
    skimage.data = data  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "skimage", skimage)
    monkeypatch.setitem(sys.modules, "skimage.data", data)
    photos._skimage_photo.cache_clear()
    try:
        singles = make_photo_folder(tmp_path / "p", classes=3, per_class=3, size=24)
        pairs = make_photo_folder(tmp_path / "q", classes=5, per_class=2, size=24)
        with caplog.at_level(logging.WARNING, logger="loadwise.testing"):
            too_many = make_photo_folder(tmp_path / "r", classes=7, per_class=1, size=24)
    finally:
        photos._skimage_photo.cache_clear()
    assert (singles.source, singles.classes) == ("skimage", ("astronaut", "coffee", "camera"))
    assert pairs.source == "skimage"
    assert pairs.classes[:4] == (
        "astronaut_and_coffee", "astronaut_and_camera", "astronaut_and_moon", "coffee_and_camera"
    )  # fmt: skip
    assert too_many.source == "rendered" and "too few sample photos" in caplog.text
    for path in [*singles.root.rglob("*.jpg"), *pairs.root.rglob("*.jpg")]:
        with Image.open(path) as image:
            assert (image.mode, image.size) == ("RGB", (24, 24))
