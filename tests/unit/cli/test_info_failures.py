"""``loadwise info`` counts what ``pack`` could not read by reason, and says whether those
items are stored as ``valid=False`` placeholders or were left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.media import jpeg

import loadwise
from loadwise.cli.main import main
from loadwise.sources import ArraySource, ImageBytes

BROKEN = (2, 5, 7)


def _packed(dest: Path, on_error: str) -> Path:
    images = [
        ImageBytes(b"not an image" if i in BROKEN else jpeg(i, (20, 30)), f"img{i}")
        for i in range(10)
    ]
    source = ArraySource({"image": images, "n": np.arange(10, dtype=np.int64)})
    loadwise.pack(source, dest, image_size=(10, 12), on_error=on_error, progress=False)
    return dest


@pytest.mark.parametrize(
    ("on_error", "how"),
    [("fallback", "stored as placeholders with valid=False"), ("skip", "left out")],
)
def test_info_counts_failures_by_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture, on_error: str, how: str
) -> None:
    dest = _packed(tmp_path / on_error, on_error)
    assert main(["info", str(dest)]) == 0
    out = capsys.readouterr().out
    assert f"failed while packing: 3 ({how})" in out
    assert "undecodable image: 3 (first: " in out


def test_info_says_none_failed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = ArraySource({"n": np.arange(4, dtype=np.int64)})
    loadwise.pack(source, tmp_path / "ok", progress=False)
    assert main(["info", str(tmp_path / "ok")]) == 0
    assert "failed while packing: none" in capsys.readouterr().out
