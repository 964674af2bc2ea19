"""Every source keeps the source contract (``tests/contracts/sources.py``)."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import numpy as np
from tests.contracts.sources import assert_source_contract
from tests.data import array_columns

from loadwise.sources import ArchiveSource, ArraySource, ImageFolder, IterableSource, OmniglotFolder


def test_image_folder(class_tree: Path) -> None:
    assert_source_contract(ImageFolder(class_tree))


def test_omniglot_folder(omniglot_tree: Path) -> None:
    assert_source_contract(OmniglotFolder(omniglot_tree))


def test_zip_archive(class_tree: Path, tmp_path: Path) -> None:
    assert_source_contract(ArchiveSource(_zip(class_tree, tmp_path / "photos.zip")))


def test_tar_archive(omniglot_tree: Path, tmp_path: Path) -> None:
    assert_source_contract(ArchiveSource(_tar(omniglot_tree, tmp_path / "omniglot.tar.gz")))


def test_array_source() -> None:
    assert_source_contract(ArraySource(array_columns()))


def test_iterable_source() -> None:
    assert_source_contract(IterableSource(_records(40)))


def _records(count: int) -> list[dict[str, object]]:
    """Plain values of every kind: an array, a Python int and float, ``str`` and ``bytes``."""
    rng = np.random.default_rng(2)
    return [
        {
            "vector": rng.standard_normal(3).astype(np.float32),
            "label": i % 4,
            "weight": float(i) / 8,
            "text": f"record {i}",
            "blob": bytes(rng.integers(0, 256, i % 5, dtype=np.uint8)),
        }
        for i in range(count)
    ]


def _zip(tree: Path, path: Path) -> Path:
    """The files of ``tree`` in a zip, under one top folder."""
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(tree.rglob("*.png")):
            archive.write(file, f"top/{file.relative_to(tree)}")
    return path


def _tar(tree: Path, path: Path) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        archive.add(tree, arcname=tree.name)
    return path
