"""The contract every access mode keeps: same samples, same order, picklable, DataLoader-safe."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.data import ARRAY_SAMPLES, array_columns
from torch.utils.data import DataLoader, IterableDataset

import loadwise
from loadwise.errors import LoadwiseError, ModeError, SampleIndexError

MODES = ("eager", "lazy", "cached", "streaming")
EXPECTED = array_columns()


def assert_samples(batch: dict, indices: np.ndarray) -> None:
    """The batch holds exactly the source rows ``indices``, field by field."""
    assert batch["index"].tolist() == list(indices)
    assert np.array_equal(batch["image"].numpy(), EXPECTED["image"][indices])
    assert np.array_equal(batch["label"].numpy(), EXPECTED["label"][indices])
    assert np.array_equal(batch["score"].numpy(), EXPECTED["score"][indices])
    assert batch["name"] == [EXPECTED["name"][i] for i in indices]
    assert batch["blob"] == [EXPECTED["blob"][i] for i in indices]


@pytest.fixture(params=MODES)
def dataset(request: pytest.FixtureRequest, arrays_packed: Path):
    ds = loadwise.open(arrays_packed, request.param)
    yield ds
    ds.close()


def test_len_and_mode(dataset) -> None:
    assert len(dataset) == ARRAY_SAMPLES
    assert dataset.mode in MODES


def test_batches_hold_the_source_samples_across_shards(dataset) -> None:
    assert len(dataset.manifest.shards) >= 4
    indices = np.random.default_rng(3).permutation(ARRAY_SAMPLES)[:50]
    assert_samples(dataset.get_batch(indices), indices)
    assert_samples(dataset.get_batch([-1]), np.array([ARRAY_SAMPLES - 1]))


def test_empty_batch_and_out_of_range(dataset) -> None:
    assert dataset.get_batch([])["image"].shape == (0, 1, 6, 5)
    with pytest.raises(SampleIndexError, match=f"{ARRAY_SAMPLES}"):
        dataset.get_batch([0, ARRAY_SAMPLES])


def test_single_items_match_batches(dataset) -> None:
    if isinstance(dataset, IterableDataset):  # streaming: samples come from iterating it
        samples = list(dataset)
        assert sorted(int(s["index"]) for s in samples) == list(range(ARRAY_SAMPLES))
        assert samples[0]["name"] == f"sample-{int(samples[0]['index'])}"
        assert torch.equal(
            samples[0]["image"], dataset.get_batch([samples[0]["index"]])["image"][0]
        )
        return
    sample = dataset[17]
    assert sample["name"] == "sample-17" and int(sample["index"]) == 17
    rows = dataset.__getitems__([4, 200])
    assert [r["name"] for r in rows] == ["sample-4", "sample-200"]
    assert torch.equal(rows[1]["image"], dataset[200]["image"])


def test_picklable_and_still_reads(dataset) -> None:
    dataset.get_batch([1, 2])  # open storage first: pickling must not carry it along
    clone = pickle.loads(pickle.dumps(dataset))
    assert_samples(clone.get_batch([5, 250]), np.array([5, 250]))
    clone.close()


def test_same_seed_same_order_for_any_worker_count(dataset) -> None:
    orders = []
    for workers in (0, 2):
        loader = loadwise.loader(dataset, 32, seed=11, num_workers=workers)
        first = torch.cat([b["index"] for b in loader])
        second = torch.cat([b["index"] for b in loader])
        orders.append((first.tolist(), second.tolist()))
    assert orders[0] == orders[1], "order must not depend on num_workers"
    first, second = orders[0]
    assert sorted(first) == list(range(ARRAY_SAMPLES)) == sorted(second)
    assert first != second, "each iteration is a new epoch with a new order"
    other = loadwise.loader(dataset, 32, seed=12)
    assert torch.cat([b["index"] for b in other]).tolist() != first


def test_loader_batches_hold_the_right_samples(dataset) -> None:
    for batch in loadwise.loader(dataset, 64, seed=0, num_workers=2):
        assert_samples(batch, batch["index"].numpy())


def test_plain_dataloader_with_workers(dataset) -> None:
    shuffle = None if isinstance(dataset, IterableDataset) else False
    loader = DataLoader(dataset, batch_size=25, num_workers=2, shuffle=shuffle)
    seen = []
    for batch in loader:
        assert batch["image"].shape[1:] == (1, 6, 5)
        assert_samples(batch, batch["index"].numpy())
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(ARRAY_SAMPLES))


def test_closes_cleanly(arrays_packed: Path) -> None:
    for mode in MODES:
        before = len(os.listdir("/proc/self/fd"))
        with loadwise.open(arrays_packed, mode) as ds:
            ds.get_batch(np.arange(ARRAY_SAMPLES))
        assert len(os.listdir("/proc/self/fd")) <= before, f"{mode} left files open"
        with pytest.raises(LoadwiseError, match="closed"):
            ds.get_batch([0])


def test_auto_logs_its_choice(arrays_packed: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="loadwise"):
        ds = loadwise.open(arrays_packed)
    assert ds.mode == "eager"
    assert any("auto mode chose eager" in r.message and "MiB" in r.message for r in caplog.records)


def test_unknown_mode_lists_valid_modes(arrays_packed: Path) -> None:
    with pytest.raises(ModeError, match="eager, lazy, cached, streaming"):
        loadwise.open(arrays_packed, "fast")
