"""Issue 18: the documented API sets no quiet traps: an empty split is a warning naming the
argument that fills it (and ``test_split`` says how big the test set is), and ``get_stats``
always has the documents' keys."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from loadwise.compat import EfficientDataLoader, create_dataloaders
from loadwise.errors import ConfigError
from loadwise.loading import DataLoaderConfig

Tree = tuple[Path, list[tuple[Path, int]]]
DOCUMENTED = ("total_time", "avg_batch_time", "batches_per_second", "avg_memory_usage",
              "avg_cpu_usage")  # fmt: skip


def test_an_empty_test_split_is_a_warning_naming_test_split(
    tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    root, files = tree
    with caplog.at_level(logging.WARNING, logger="loadwise"):
        train, val, test = create_dataloaders(root, img_size=8, val_split=0.0)  # the documents'
    assert len(test.dataset) == 0 and len(train.dataset) == len(files)
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "the test split" in warned and "pass `test_split` > 0" in warned
    assert "the val split" in warned and "pass `val_split` > 0" in warned


def test_test_split_forms_the_test_set(tree: Tree, caplog: pytest.LogCaptureFixture) -> None:
    root, files = tree
    with caplog.at_level(logging.WARNING, logger="loadwise"):
        train, val, test = create_dataloaders(root, img_size=8, val_split=0.0, test_split=0.2)
    assert len(val.dataset) == 0 and len(test.dataset) == 4  # cat 7, dog 5, emu 9: 1 + 1 + 2
    assert [r.getMessage() for r in caplog.records if "test split" in r.getMessage()] == []
    split = [loader.dataset.indices for loader in (train, val, test)]
    assert sorted(np.concatenate(split).tolist()) == list(range(len(files)))
    with pytest.raises(ConfigError, match="`test_split` must be in"):
        create_dataloaders(root, img_size=8, test_split=0.7)


def test_the_same_split_as_before_when_test_split_is_not_given(tree: Tree) -> None:
    root, _ = tree
    old = [ld.dataset.indices for ld in create_dataloaders(root, img_size=8, val_split=0.2)]
    new = [
        ld.dataset.indices
        for ld in create_dataloaders(root, img_size=8, val_split=0.2, test_split=0.2)
    ]
    assert all(np.array_equal(a, b) for a, b in zip(old, new, strict=True))


def test_get_stats_has_the_documents_keys_without_monitoring() -> None:
    data = TensorDataset(torch.arange(64), torch.arange(64))
    loader = EfficientDataLoader(data, DataLoaderConfig(batch_size=8))
    before = loader.get_stats()
    assert all(key in before for key in DOCUMENTED)
    for _ in loader:
        pass
    stats = loader.get_stats()
    assert stats["batches_per_second"] > 0 and stats["total_time"] > 0
    assert stats["avg_batch_time"] == pytest.approx(stats["total_time"] / 8)
    assert stats["avg_memory_usage"] is None and stats["avg_cpu_usage"] is None
    assert "enable_monitoring=True" in stats["note"]
    # the documents' own example, pasted without the flag
    print_line = f"{stats['batches_per_second']:.1f} batches/s, memory {stats['avg_memory_usage']}"
    assert "batches/s" in print_line
