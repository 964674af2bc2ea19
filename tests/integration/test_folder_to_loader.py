"""Source to batches: an Omniglot tree packed, opened in every mode, loaded with workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import loadwise


@pytest.mark.parametrize("mode", ["eager", "lazy", "cached", "streaming", "auto"])
def test_every_mode_serves_the_drawings(
    mode: str, omniglot_tree: Path, omniglot_packed: Path
) -> None:
    files = sorted(omniglot_tree.glob("*/*/*.png"))
    ds = loadwise.open(omniglot_packed, mode, fields=("image", "label"))
    loader = loadwise.loader(ds, 16, seed=4, num_workers=2)
    seen = []
    for batch in loader:
        assert set(batch) == {"image", "label", "index"}
        assert batch["image"].dtype == torch.uint8 and batch["image"].shape[1:] == (1, 105, 105)
        for image, index in zip(batch["image"], batch["index"].tolist(), strict=True):
            assert np.array_equal(
                image[0].numpy(), np.asarray(Image.open(files[index]).convert("L"))
            )
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(len(files)))
