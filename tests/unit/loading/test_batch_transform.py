"""batch_transform runs once per batch where the batch is made (or after the move to a
device); a user collate_fn keeps its samples and the loader keeps its one gather a batch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import loadwise
from loadwise.loading import DataLoaderConfig
from loadwise.transforms import Normalize


def made_in(batch: dict[str, Any]) -> dict[str, Any]:
    """Tags the batch with the process that ran the transform (module-level: picklable)."""
    return {**batch, "pid": torch.full((len(batch["index"]),), os.getpid())}


@pytest.mark.parametrize(
    ("workers", "device", "in_main"),
    [(0, None, True), (2, None, False), (2, "cpu", True), (0, "cpu", True)],
)
def test_the_transform_runs_where_the_rule_says(
    arrays_packed: Path, workers: int, device: str | None, in_main: bool
) -> None:
    data = loadwise.open(arrays_packed, "lazy")
    loader = loadwise.loader(data, 64, num_workers=workers, device=device, batch_transform=made_in)
    batches = list(loader)
    assert sum(len(b["index"]) for b in batches) == 300
    pids = {int(p) for b in batches for p in b["pid"]}
    assert (pids == {os.getpid()}) if in_main else (os.getpid() not in pids and len(pids) >= 1)


def test_normalize_through_the_loader_matches_normalizing_each_batch(arrays_packed: Path) -> None:
    data = loadwise.open(arrays_packed, "eager")
    plain = list(loadwise.loader(data, 50, seed=2))
    config = DataLoaderConfig(batch_size=50, generator_seed=2, num_workers=2,
                              batch_transform=Normalize((0.5,), (0.2,)))  # fmt: skip
    normalized = list(loadwise.loader(data, config=config))
    assert [b["index"].tolist() for b in normalized] == [b["index"].tolist() for b in plain]
    for before, after in zip(plain, normalized, strict=True):
        expected = (before["image"].float() / 255 - 0.5) / 0.2
        torch.testing.assert_close(after["image"], expected)
        assert torch.equal(after["label"], before["label"])


class Recorder:
    """A collate_fn that keeps what it was given (indices and labels of each sample)."""

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "index": torch.stack([s["index"] for s in samples]),
            "label": torch.stack([s["label"] for s in samples]),
            "names": [s["name"] for s in samples],
        }


@pytest.mark.parametrize("workers", [0, 2])
def test_a_collate_fn_sees_the_samples_a_plain_dataloader_gives_it(
    arrays_packed: Path, workers: int
) -> None:
    data = loadwise.open(arrays_packed, "lazy")
    expected = list(DataLoader(data, batch_size=32, shuffle=False, collate_fn=Recorder()))
    config = DataLoaderConfig(batch_size=32, shuffle=False, num_workers=workers,
                              collate_fn=Recorder())  # fmt: skip
    got = list(loadwise.loader(data, config=config))
    assert len(got) == len(expected) == 10
    for mine, theirs in zip(got, expected, strict=True):
        assert torch.equal(mine["index"], theirs["index"])
        assert torch.equal(mine["label"], theirs["label"]) and mine["names"] == theirs["names"]


def test_a_collate_fn_keeps_one_get_batch_per_batch(arrays_packed: Path) -> None:
    data = loadwise.open(arrays_packed, "lazy")
    calls: list[int] = []
    get_batch = data.get_batch

    def counted(indices: Any) -> Any:
        calls.append(len(indices))
        return get_batch(indices)

    data.get_batch = counted  # type: ignore[method-assign]
    config = DataLoaderConfig(batch_size=32, collate_fn=Recorder(), batch_transform=made_in)
    batches = list(loadwise.loader(data, config=config))
    assert calls == [32] * 9 + [12]  # one gather a batch, never one per sample
    assert len(batches) == 10 and all("pid" in b for b in batches)


class Plain(Dataset):
    """A torch dataset without ``get_batch``: fetched a sample at a time."""

    def __len__(self) -> int:
        return 20

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": torch.tensor(i), "index": torch.tensor(i)}


@pytest.mark.parametrize("workers", [0, 2])
def test_per_sample_datasets_get_the_transform_on_the_collated_batch(workers: int) -> None:
    loader = loadwise.loader(Plain(), 8, shuffle=False, num_workers=workers,
                             batch_transform=made_in)  # fmt: skip
    batches = list(loader)
    assert [b["x"].tolist() for b in batches] == [list(range(0, 8)), list(range(8, 16)),
                                                  list(range(16, 20))]  # fmt: skip
    pids = {int(p) for b in batches for p in b["pid"]}
    assert (pids == {os.getpid()}) if workers == 0 else (os.getpid() not in pids)
