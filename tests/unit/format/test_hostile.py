"""Hostile input: decompression bombs are refused per file; user data is never unpickled."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import loadwise
from loadwise.errors import SourceError

SRC = Path(loadwise.__file__).parent


@pytest.fixture(scope="module")
def bomb_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bomb") / "tree"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        Image.fromarray(np.full((8, 8), 7, np.uint8)).save(root / c / "ok.png")
    # 96 M pixels compress to a few KB: over Pillow's 89 M limit, a classic bomb.
    Image.new("1", (12_000, 8_000)).save(root / "b" / "bomb.png")
    return root


def test_decompression_bomb_is_refused_naming_the_file(bomb_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"bomb\.png.*decompression bomb"):
        loadwise.pack(bomb_tree, tmp_path / "d", image_size=8, progress=False)


def test_decompression_bomb_is_skipped_and_reported(bomb_tree: Path, tmp_path: Path) -> None:
    report = loadwise.pack(bomb_tree, tmp_path / "d", image_size=8, on_error="skip", progress=False)
    assert report.num_samples == 2
    assert [s.item for s in report.skipped] == ["b/bomb.png"]
    assert "decompression bomb" in report.skipped[0].reason


def test_no_unpickling_or_eval_of_user_data_anywhere() -> None:
    banned = re.compile(
        r"\bpickle\.loads?\b|allow_pickle\s*=\s*True|torch\.load\(|\beval\(|\bexec\("
    )
    offenders = [
        f"{path.relative_to(SRC)}:{n}"
        for path in SRC.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if banned.search(line)
    ]
    assert offenders == []
