"""Real image folders written with Pillow, and a per-test folder cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

MakeTree = Callable[..., list[tuple[Path, int]]]


def write_image(path: Path, rng: np.random.Generator, tone: int) -> None:
    """A noisy picture with a coloured block; PNG or JPEG by suffix, grayscale if named so."""
    height, width = (int(v) for v in rng.integers(36, 60, size=2))
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    top, left = (int(v) for v in rng.integers(0, 20, size=2))
    pixels[top : top + 16, left : left + 16] = (tone, 255 - tone, (tone * 7) % 256)
    image = Image.fromarray(pixels)
    if "gray" in path.name:
        image = image.convert("L")
    image.save(path)


@pytest.fixture(autouse=True)
def folder_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test packs into its own cache, never the user's."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LOADWISE_CACHE", str(cache))
    return cache


@pytest.fixture
def rewrite() -> Callable[[Path, int], None]:
    """``rewrite(path, seed)`` replaces a file with a new picture (conftest is not importable)."""
    return lambda path, seed: write_image(path, np.random.default_rng(seed), tone=seed % 256)


@pytest.fixture
def make_tree() -> MakeTree:
    """``make(root, {"class": count, ...}, seed)`` writes files; returns (path, label) in order."""

    def make(root: Path, counts: dict[str, int], seed: int = 0) -> list[tuple[Path, int]]:
        rng = np.random.default_rng(seed)
        files = []
        for label, name in enumerate(sorted(counts)):
            (root / name).mkdir(parents=True, exist_ok=True)
            for i in range(counts[name]):
                suffix = ("rgb.jpg", "rgb.png", "gray.png")[i % 3]
                path = root / name / f"{i:03d}_{suffix}"
                write_image(path, rng, tone=40 * label + i)
                files.append((path, label))
        return sorted(files)

    return make


@pytest.fixture
def tree(tmp_path: Path, make_tree: MakeTree) -> tuple[Path, list[tuple[Path, int]]]:
    """Three classes of 7, 5 and 9 varied PNG/JPEG files."""
    root = tmp_path / "images"
    return root, make_tree(root, {"cat": 7, "dog": 5, "emu": 9})
