"""Eager data lives once in shared memory: workers read it without private copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psutil

import loadwise

SAMPLES, SHAPE = 1200, (1, 256, 256)  # 75 MiB of uint8 images


def test_workers_share_eager_data(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (SAMPLES, *SHAPE), dtype=np.uint8)
    loadwise.pack({"image": images}, tmp_path / "d", shard_bytes=16 * 2**20, progress=False)
    ds = loadwise.open(tmp_path / "d", "eager")
    assert all(t.is_shared() for t in ds._tensors.values())
    loader = loadwise.loader(ds, 64, num_workers=2, seed=0)
    seen = 0
    for _epoch in range(2):
        for batch in loader:
            seen += len(batch["index"])
            assert np.array_equal(batch["image"].numpy(), images[batch["index"].numpy()])
    workers = psutil.Process().children()
    assert len(workers) == 2 and seen == 2 * SAMPLES
    private = [w.memory_full_info().uss for w in workers]
    assert max(private) < images.nbytes / 3, f"workers hold private copies: {private}"
