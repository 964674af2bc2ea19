"""Length buckets: a pure order of ``(lengths, seed, epoch, group)``, each group alike in
length, every sample once, resumable through the loader, shared out across ranks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.contracts.resume import assert_resumes_exactly
from tests.text_data import bpe, texts

import loadwise
from loadwise.errors import ConfigError, ResumeError
from loadwise.sampling.buckets import bucket_order, padding_fraction
from loadwise.sampling.order import batches, partition
from loadwise.sources.text import TextSource

pytest.importorskip("tokenizers")


def _long_tailed(n: int, seed: int = 0) -> np.ndarray:
    return np.maximum(1, np.random.default_rng(seed).lognormal(3, 1.2, n)).astype(np.int64)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 300), st.integers(1, 40), st.integers(0, 3), st.booleans())
def test_every_sample_once_in_a_pure_order(n: int, group: int, epoch: int, shuffle: bool) -> None:
    lengths = _long_tailed(n)
    order = bucket_order(lengths, 5, epoch, group, shuffle=shuffle, pool_groups=4)
    assert sorted(order.tolist()) == list(range(n))
    np.testing.assert_array_equal(
        order, bucket_order(lengths, 5, epoch, group, shuffle=shuffle, pool_groups=4)
    )


def test_bucketing_cuts_padding_on_long_tailed_lengths() -> None:
    lengths = _long_tailed(5000)
    plain = batches(np.random.default_rng(0).permutation(5000), 32)
    bucketed = batches(bucket_order(lengths, 0, 0, 32), 32)
    assert padding_fraction(lengths, bucketed) * 4 < padding_fraction(lengths, plain)


def test_epochs_and_seeds_differ() -> None:
    lengths = _long_tailed(2000)
    first = bucket_order(lengths, 0, 0, 16)
    assert not np.array_equal(first, bucket_order(lengths, 0, 1, 16))
    assert not np.array_equal(first, bucket_order(lengths, 1, 0, 16))


def test_ranks_each_get_one_batch_of_every_group() -> None:
    lengths = _long_tailed(1000)
    order = bucket_order(lengths, 0, 0, 4 * 8)  # batch 8, world 4
    for rank in range(4):
        mine = batches(partition(order, rank, 4), 8)
        groups = [order[i : i + 32] for i in range(0, len(order), 32)]
        assert all(set(b.tolist()) <= set(g.tolist()) for b, g in zip(mine, groups, strict=False))


def test_bad_group_is_refused() -> None:
    with pytest.raises(ConfigError, match="`group`"):
        bucket_order(np.ones(3, np.int64), 0, 0, 0)


@pytest.fixture(scope="module")
def packed_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("text") / "packed"
    loadwise.pack(
        TextSource(texts(160), bpe(), max_length=64), dest, shard_bytes=4_000, progress=False
    )
    return dest


def _bucketed(dataset: object, **kw: object) -> loadwise.Loader:
    config = loadwise.DataLoaderConfig(bucket_by_length=True)
    return loadwise.loader(dataset, seed=3, config=config, **kw)  # type: ignore[arg-type]


def test_the_bucketed_loader_resumes_exactly(packed_text: Path) -> None:
    dataset = loadwise.open(packed_text, "lazy")
    assert_resumes_exactly(lambda **kw: _bucketed(dataset, **kw), other_batch_size=None)


def test_resuming_with_another_batch_size_is_refused(packed_text: Path) -> None:
    dataset = loadwise.open(packed_text, "lazy")
    state = _bucketed(dataset, batch_size=8).state_dict()
    with pytest.raises(
        ResumeError, match="length buckets of 8 samples, this loader has length buckets of 16"
    ):
        _bucketed(dataset, batch_size=16).load_state_dict(state)
    with pytest.raises(ResumeError, match="this loader has no length buckets"):
        loadwise.loader(dataset, 8, seed=3).load_state_dict(state)


def test_datasets_without_lengths_cannot_bucket() -> None:
    data = loadwise.sources.ArraySource({"x": np.zeros((4, 2))})
    with pytest.raises(ConfigError, match="length-bucketed batches need the lengths"):
        _bucketed(list(data), batch_size=2)
