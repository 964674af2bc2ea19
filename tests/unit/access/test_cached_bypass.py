"""Cached mode caches decoded images only; array-only datasets read straight from the map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import loadwise


def test_array_fields_skip_the_cache_and_match_lazy(arrays_packed: Path) -> None:
    with (
        loadwise.open(arrays_packed, "cached") as cached,
        loadwise.open(arrays_packed, "lazy") as lazy,
    ):
        assert not cached.decodes
        idx = np.array([5, 290, 0, 5])
        got, want = cached.get_batch(idx), lazy.get_batch(idx)
        assert set(got) == set(want)
        for name, value in want.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(got[name], value)
            else:
                assert got[name] == value
        assert len(cached.cache) == 0 and cached.cache.misses == 0


def test_encoded_images_are_cached(class_tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "enc.loadwise"
    loadwise.pack(class_tree, dest, encoded=True, progress=False)
    with loadwise.open(dest, "cached") as ds:
        assert ds.decodes
        first = ds.get_batch([0, 1])
        again = ds.get_batch([1, 0])
        assert ds.cache.hits == 2 and len(ds.cache) == 2
        assert torch.equal(again["index"], torch.tensor([1, 0]))
        assert torch.equal(again["image"][0], first["image"][1])
