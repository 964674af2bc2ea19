"""``TextDataset`` and ``create_text_dataloader``: tokenized once, padded per batch, reported."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.text_data import bpe, texts, write_jsonl, write_txt
from torch.utils.data import DataLoader

from loadwise.compat import CustomCollateFn, DataLoaderConfig, DataLoaderFactory, TextDataset
from loadwise.errors import ConfigError

pytest.importorskip("tokenizers")


def test_items_padded_to_max_length_with_labels(tmp_path: Path) -> None:
    samples = texts(30)
    path = write_jsonl(tmp_path / "a.jsonl", samples, [i % 3 for i in range(30)])
    dataset = TextDataset(path, bpe(), max_length=16)
    item = dataset[4]
    ids = bpe().encode(samples[4]).ids[:16]
    assert item["input_ids"].shape == (16,) and item["input_ids"][: len(ids)].tolist() == ids
    assert item["attention_mask"].sum() == len(ids) and item["labels"] == 1
    batch = next(iter(DataLoader(dataset, batch_size=8)))  # the default collate works
    assert batch["input_ids"].shape == (8, 16)


def test_character_fallback_and_the_report(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"short\n\nthis line is long\n\xff broken\n")
    with caplog.at_level(logging.INFO, logger="loadwise"):
        dataset = TextDataset(path, max_length=8)
    assert dataset[0]["input_ids"][:5].tolist() == [ord(c) for c in "short"]
    assert (dataset.report.samples, dataset.report.truncated) == (3, 1)
    assert (dataset.report.empty_lines, dataset.report.invalid_utf8_lines) == (1, 1)
    assert "truncated=1" in caplog.text


def test_packed_once_then_reused(tmp_path: Path) -> None:
    path = write_txt(tmp_path / "a.txt", texts(20))
    first = TextDataset(path, bpe(), max_length=32)
    again = TextDataset(path, bpe(), max_length=32)
    assert first.path == again.path
    assert TextDataset(path, bpe(), max_length=16).path != first.path


@pytest.mark.parametrize("bad", [0, -1])
def test_max_length_must_be_positive(tmp_path: Path, bad: int) -> None:
    with pytest.raises(ConfigError, match="`max_length` must be an integer >= 1"):
        TextDataset(write_txt(tmp_path / "a.txt", ["x"]), max_length=bad)


def test_the_text_loader_pads_each_batch_to_its_longest(tmp_path: Path) -> None:
    path = write_txt(tmp_path / "a.txt", texts(200))
    padding = {}
    for bucket in (False, True):
        config = DataLoaderConfig(batch_size=16, bucket_by_length=bucket)
        loader = DataLoaderFactory.create_text_dataloader(
            path, config, max_length=64, tokenizer=bpe()
        )
        batches = list(loader)
        assert all(b["input_ids"].shape[1] == int(b["lengths"].max()) for b in batches)
        padded = sum(int(b["attention_mask"].numel()) for b in batches)
        padding[bucket] = padded - sum(int(b["lengths"].sum()) for b in batches)
    assert padding[True] * 2 < padding[False]


def test_the_text_loader_without_the_batched_path(tmp_path: Path) -> None:
    path = write_txt(tmp_path / "a.txt", texts(40))
    config = DataLoaderConfig(batch_size=8, memory_efficient=False)
    loader = DataLoaderFactory.create_text_dataloader(path, config, max_length=32)
    batch = next(iter(loader))
    assert batch["input_ids"].shape[1] == int(batch["lengths"].max())


def test_collate_functions() -> None:
    images, labels = CustomCollateFn.image_collate(
        [(torch.zeros(3, 2, 2), 1), (torch.ones(3, 2, 2), 0)]
    )
    assert images.shape == (2, 3, 2, 2) and labels.tolist() == [1, 0]
    text = CustomCollateFn.text_collate(
        [{"input_ids": [5, 6], "labels": 1}, {"input_ids": [7], "labels": 0}], pad_token_id=9
    )
    assert text["input_ids"].tolist() == [[5, 6], [7, 9]] and text["attention_mask"].tolist() == [
        [1, 1],
        [1, 0],
    ]
    assert text["labels"].tolist() == [1, 0] and text["lengths"].tolist() == [2, 1]
    padded, lengths, labels = CustomCollateFn.variable_length_collate(
        [(torch.ones(2, 3), 4), (torch.ones(1, 3), 5)]
    )
    assert padded.shape == (2, 2, 3) and lengths.tolist() == [2, 1] and labels.tolist() == [4, 5]
    bare = CustomCollateFn.variable_length_collate([np.arange(3), np.arange(1)])
    assert bare[0].tolist() == [[0, 1, 2], [0, 0, 0]] and bare[2] is None
