"""``open(..., crop=)``: images come out as their centre crop, cut while they decode, the
same in every mode and with workers, and a crop that cannot apply is refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

import loadwise
from loadwise.errors import ConfigError, SourceError
from loadwise.format import codecs
from loadwise.testing import make_photo_folder

CROP = (20, 24)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crop")
    return make_photo_folder(root / "photos", classes=2, per_class=12, size=32, seed=5).root


@pytest.fixture(scope="module")
def jpegs(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crop-packed") / "jpegs"
    loadwise.pack(folder, out, encoded=True, progress=False)
    return out


@pytest.fixture(scope="module")
def pngs(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crop-png")
    for path in sorted(folder.rglob("*.jpg")):
        target = root / "png" / path.parent.name / f"{path.stem}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(path).save(target)
    loadwise.pack(root / "png", root / "packed", encoded=True, progress=False)
    return root / "packed"


def _reference(data: Path, indices: list[int]) -> torch.Tensor:
    """Pillow's decode of each stored image, centre-cropped in NumPy."""
    full = loadwise.open(data, "lazy").get_batch(indices)["image"]
    top, left = (full.shape[2] - CROP[0]) // 2, (full.shape[3] - CROP[1]) // 2
    return full[:, :, top : top + CROP[0], left : left + CROP[1]]


@pytest.mark.parametrize("kind", ["jpegs", "pngs"])
@pytest.mark.parametrize("mode", ["lazy", "eager", "cached", "streaming"])
def test_every_mode_gives_the_centre_crop(
    kind: str, mode: str, request: pytest.FixtureRequest
) -> None:
    data = request.getfixturevalue(kind)
    indices = [0, 5, 23, 11]
    batch = loadwise.open(data, mode, crop=CROP).get_batch(indices)
    assert batch["image"].shape == (4, 3, *CROP)
    assert torch.equal(batch["image"], _reference(data, indices))


def test_one_by_one_decodes_are_cropped_too(jpegs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow, image by image (the batch path's simplejpeg gives Pillow's pixels)."""
    monkeypatch.setattr(codecs, "_simplejpeg", lambda: None)
    batch = loadwise.open(jpegs, "lazy", crop=CROP).get_batch([1, 2])
    assert torch.equal(batch["image"], _reference(jpegs, [1, 2]))


def test_workers_give_the_same_cropped_batches(jpegs: Path) -> None:
    data = loadwise.open(jpegs, "lazy", crop=CROP)
    here = [b["image"] for b in loadwise.loader(data, 8, seed=3)]
    with loadwise.loader(data, 8, seed=3, num_workers=2) as loader:
        there = [b["image"].clone() for b in loader]
    assert len(here) == len(there) == 3
    assert all(torch.equal(a, b) for a, b in zip(here, there, strict=True))
    assert here[0].shape == (8, 3, *CROP)


def test_a_square_crop_may_be_one_int(jpegs: Path) -> None:
    assert loadwise.open(jpegs, "lazy", crop=16).get_batch([0])["image"].shape == (1, 3, 16, 16)


@pytest.mark.parametrize("crop", [(0, 10), (-1, 5), (10,), "224", (1.5, 2), True])
def test_a_malformed_crop_is_refused_naming_it(jpegs: Path, crop: object) -> None:
    with pytest.raises(ConfigError, match="`crop`"):
        loadwise.open(jpegs, "lazy", crop=crop)  # type: ignore[arg-type]


def test_a_crop_larger_than_the_images_names_the_sample(jpegs: Path) -> None:
    data = loadwise.open(jpegs, "lazy", crop=(40, 10))
    with pytest.raises(SourceError, match=r"sample 2 .*40x10.*32x32"):
        data.get_batch([2])


def test_a_crop_without_image_fields_is_refused(arrays_packed: Path) -> None:
    with pytest.raises(ConfigError, match="no image field"):
        loadwise.open(arrays_packed, "lazy", crop=8)


def test_a_crop_on_data_read_in_place_is_refused(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "images.h5", "w") as f:
        f["image"] = torch.zeros(4, 3, 8, 8, dtype=torch.uint8).numpy()
    with pytest.raises(ConfigError, match="read in place"):
        loadwise.open(tmp_path / "images.h5", "lazy", crop=4)
