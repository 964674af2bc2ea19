"""Worker batches through the rings of shared slots: the same batches, slots reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import loadwise
from loadwise.loading import transport
from loadwise.testing import make_photo_folder


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("transport")
    folder = make_photo_folder(root / "photos", classes=2, per_class=40, size=32, seed=4)
    loadwise.pack(folder.root, root / "jpegs", encoded=True, progress=False)
    return root / "jpegs"


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], torch.Tensor):
                assert torch.equal(x[k], y[k]), k
            else:
                assert x[k] == y[k], k


@pytest.mark.parametrize("mode", ["eager", "lazy", "streaming"])
def test_batches_from_slots_equal_the_0_worker_ones(arrays_packed: Path, mode: str) -> None:
    ds = loadwise.open(arrays_packed, mode)
    here = list(loadwise.loader(ds, 16, seed=2))
    loader = loadwise.loader(ds, 16, seed=2, num_workers=2)
    assert loader.view.rings is not None
    kept = list(loader)  # 19 batches kept: more than the rings hold, the rest torch's way
    _same(here, kept)
    rings = loader.view.rings.rings
    assert all((r.states == transport.HELD).all() for r in rings)  # each serves a kept batch
    del kept
    assert all((r.states == transport.FREE).all() for r in rings)  # free once they are gone


def test_decoded_images_are_written_into_the_slot(jpegs: Path) -> None:
    ds = loadwise.open(jpegs, "lazy")
    here = list(loadwise.loader(ds, 16, seed=1))
    with loadwise.loader(ds, 16, seed=1, num_workers=2) as loader:
        for i, batch in enumerate(loader):
            ring_maps = [r.map for r in loader.view.rings.rings]
            storage = batch["image"].untyped_storage().data_ptr()
            lows = [np.frombuffer(m, np.uint8, 1).ctypes.data for m in ring_maps]
            assert any(0 <= storage - low < len(m) for low, m in zip(lows, ring_maps, strict=True))
            _same([here[i]], [batch])


def test_a_custom_collate_container_goes_torchs_way(arrays_packed: Path) -> None:
    ds = loadwise.open(arrays_packed, "eager")
    collate = _pair_collate
    config = loadwise.DataLoaderConfig(batch_size=32, num_workers=2, collate_fn=collate)
    got = list(loadwise.loader(ds, config=config))
    assert all(type(b).__name__ == "Pair" for b in got)
    assert sum(len(b[0]) for b in got) == len(ds)


class Pair(tuple):  # type: ignore[type-arg]
    """A user's own batch container (module level, so workers can pickle it)."""


def _pair_collate(samples: list[dict[str, Any]]) -> Pair:
    return Pair((torch.tensor([s["index"] for s in samples]), len(samples)))


def test_a_new_worker_frees_slots_its_dead_predecessor_wrote() -> None:
    ring = transport.Ring(3)
    ring.states[:] = [transport.WRITTEN, transport.HELD, transport.FREE]
    ring.owner = -1
    ring.claim()
    assert ring.states.tolist() == [transport.FREE, transport.HELD, transport.FREE]
    assert ring.take() == 0 and ring.take() == 2 and ring.take() is None
