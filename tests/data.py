"""Data builders shared by tests: small, seeded, made in temporary folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_class_tree(root: Path, classes: int = 3, per_class: int = 4, size: int = 24) -> Path:
    """``root/<class>/<n>.png`` with random RGB content, different per file."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


ARRAY_SAMPLES = 300


def array_columns() -> dict[str, object]:
    """Fixed-size, scalar, text and variable-length fields: every kind the format stores."""
    rng = np.random.default_rng(7)
    return {
        "image": rng.integers(0, 256, (ARRAY_SAMPLES, 1, 6, 5), dtype=np.uint8),
        "label": np.arange(ARRAY_SAMPLES, dtype=np.int64) % 7,
        "score": rng.standard_normal(ARRAY_SAMPLES).astype(np.float32),
        "name": [f"sample-{i}" for i in range(ARRAY_SAMPLES)],
        "blob": [bytes(rng.integers(0, 256, i % 9, dtype=np.uint8)) for i in range(ARRAY_SAMPLES)],
    }
