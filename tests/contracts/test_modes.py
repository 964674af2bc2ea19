"""Every access mode keeps the mode contract (``tests/contracts/modes.py``), on every field
kind: arrays, scalars, strings and bytes, and encoded images decoded on read. Auto and
unknown modes, which are not modes of their own, are checked here too."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.contracts.compare import Columns
from tests.contracts.modes import assert_mode_contract
from tests.data import array_columns

import loadwise
from loadwise.errors import ModeError
from loadwise.sources import OmniglotFolder

MODES = ("eager", "lazy", "cached", "streaming")


@pytest.mark.parametrize("mode", MODES)
def test_mode_keeps_the_contract(arrays_packed: Path, mode: str) -> None:
    assert_mode_contract(lambda: loadwise.open(arrays_packed, mode), array_columns())


@pytest.mark.parametrize("mode", MODES)
def test_mode_keeps_the_contract_on_encoded_images(
    encoded_drawings: tuple[Path, Columns], mode: str
) -> None:
    packed, drawings = encoded_drawings
    assert_mode_contract(lambda: loadwise.open(packed, mode), drawings, shapeless={"image"})


@pytest.fixture(scope="module")
def encoded_drawings(
    omniglot_tree: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Columns]:
    """The Omniglot tree packed as PNG bytes in 4 shards, and its drawings decoded by Pillow."""
    packed = tmp_path_factory.mktemp("encoded") / "drawings.loadwise"
    loadwise.pack(omniglot_tree, packed, encoded=True, shard_bytes=8_000, progress=False)
    records = [record for _, record in OmniglotFolder(omniglot_tree)]
    return packed, {
        "image": np.stack([_decoded(r["image"].path) for r in records]),
        "label": np.array([r["label"] for r in records], dtype=np.int64),
        "alphabet": np.array([r["alphabet"] for r in records], dtype=np.int64),
        "path": [r["path"] for r in records],
    }


def _decoded(path: Path) -> np.ndarray:
    """A drawing as loadwise gives it: grayscale, ``(1, H, W)`` uint8."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))[None]


def test_the_data_crosses_shard_boundaries(
    arrays_packed: Path, encoded_drawings: tuple[Path, Columns]
) -> None:
    for packed in (arrays_packed, encoded_drawings[0]):
        assert loadwise.verify(packed).shards_checked >= 4  # so batches span shards


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_names_itself(arrays_packed: Path, mode: str) -> None:
    with loadwise.open(arrays_packed, mode) as dataset:
        assert dataset.mode == mode


def test_auto_logs_its_choice(arrays_packed: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="loadwise"):
        ds = loadwise.open(arrays_packed)
    assert ds.mode == "eager"
    assert any("auto mode chose eager" in r.message and "MiB" in r.message for r in caplog.records)


def test_unknown_mode_lists_valid_modes(arrays_packed: Path) -> None:
    with pytest.raises(ModeError, match="eager, lazy, cached, streaming"):
        loadwise.open(arrays_packed, "fast")
