"""Datasets packed by format version 2 (committed fixtures, made by ``make_v2.py``) still
open in every mode, read the same values, and verify."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import loadwise
from loadwise.format.fields import ArrayField, BytesField, ImageField, StringField
from loadwise.format.reader import read_manifest

V2 = Path(__file__).parents[2] / "fixtures" / "format_v2"
MODES = ("eager", "lazy", "cached", "streaming")


@pytest.fixture
def v2(tmp_path: Path) -> Path:
    """A writable copy (opening never writes, but tests must not touch the fixtures)."""
    shutil.copytree(V2, tmp_path / "v2")
    return tmp_path / "v2"


def test_version_2_fields_map_to_kinds(v2: Path) -> None:
    arrays = read_manifest(v2 / "arrays")
    assert arrays.version == 2
    assert arrays.field("image") == ArrayField("image", "uint8", (1, 4, 3))
    assert arrays.field("flag") == ArrayField("flag", "bool", ())
    assert isinstance(arrays.field("name"), StringField)
    assert type(arrays.field("blob")) is BytesField
    assert read_manifest(v2 / "encoded").field("image") == ImageField("image", "RGB")


@pytest.mark.parametrize("mode", MODES)
def test_version_2_arrays_read_as_packed(v2: Path, mode: str) -> None:
    want = np.load(v2 / "arrays-expected.npz")
    ends = np.cumsum(want["blob_lengths"])
    blobs = [
        want["blob_data"][e - n : e].tobytes()
        for e, n in zip(ends, want["blob_lengths"], strict=True)
    ]
    with loadwise.open(v2 / "arrays", mode) as ds:
        assert len(ds.manifest.shards) > 1
        idx = np.array([11, 0, 5, 7, 3])
        batch = ds.get_batch(idx)
    for name in ("image", "label", "score", "flag"):
        np.testing.assert_array_equal(batch[name].numpy(), want[name][idx])
    assert batch["name"] == [str(want["name"][i]) for i in idx]
    assert batch["blob"] == [blobs[i] for i in idx]


@pytest.mark.parametrize("mode", MODES)
def test_version_2_encoded_images_decode_to_the_decoded_pack(v2: Path, mode: str) -> None:
    with (
        loadwise.open(v2 / "decoded", "eager") as decoded,
        loadwise.open(v2 / "encoded", mode) as enc,
    ):
        idx = np.arange(len(decoded))[::-1].copy()
        assert np.array_equal(
            enc.get_batch(idx)["image"].numpy(), decoded.get_batch(idx)["image"].numpy()
        )
        assert enc.get_batch(idx)["path"] == decoded.get_batch(idx)["path"]


def test_version_2_datasets_verify(v2: Path) -> None:
    for name in ("arrays", "encoded", "decoded"):
        report = loadwise.verify(v2 / name)
        assert report.ok and report.shards_checked >= 1
