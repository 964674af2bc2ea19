"""Resuming a loader: exactly the samples not yet yielded, whatever changed that may change."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import loadwise
from loadwise.errors import ResumeError
from loadwise.loading import DataLoaderConfig
from loadwise.loading.sampler import EpochBatchSampler
from loadwise.sampling.order import epoch_order


def _indices(batches: list[dict[str, torch.Tensor]]) -> list[int]:
    return [i for b in batches for i in b["index"].tolist()]


def _take(loader: loadwise.Loader, count: int) -> list[dict[str, torch.Tensor]]:
    taken = []
    for batch in loader:
        taken.append(batch)
        if len(taken) == count:
            break
    return taken


@pytest.mark.parametrize("mode", ["eager", "lazy", "streaming"])
@pytest.mark.parametrize("workers", [0, 2])
def test_resume_mid_epoch_yields_exactly_the_rest(
    arrays_packed: Path, mode: str, workers: int
) -> None:
    data = loadwise.open(arrays_packed, mode)
    first = loadwise.loader(data, 32, seed=3, num_workers=workers)
    seen = _indices(_take(first, 4))
    saved = first.state_dict()
    assert saved["epoch"] == 0 and saved["position"] == 128

    again = loadwise.loader(data, 32, seed=3, num_workers=workers)
    again.load_state_dict(saved)
    rest = _indices(list(again))
    whole = loadwise.loader(data, 32, seed=3)
    assert seen + rest == _indices(list(whole))
    assert again.epoch == 0
    assert _indices(list(again)) == _indices(list(whole))  # then epoch 1, as uninterrupted


def test_resume_keeps_exact_semantics_with_a_new_batch_size(arrays_packed: Path) -> None:
    data = loadwise.open(arrays_packed, "lazy")
    first = loadwise.loader(data, 20, seed=1)
    seen = _indices(_take(first, 3))
    again = loadwise.loader(data, 64, seed=1, num_workers=2)
    again.load_state_dict(first.state_dict())
    rest = list(again)
    assert len(rest[0]["index"]) == 64
    assert seen + _indices(rest) == epoch_order(len(data), 1, 0).tolist()


def test_second_resume_and_epoch_boundary(arrays_packed: Path) -> None:
    data = loadwise.open(arrays_packed, "eager")
    a = loadwise.loader(data, 50, seed=9)
    got = _indices(_take(a, 2))
    b = loadwise.loader(data, 50, seed=9)
    b.load_state_dict(a.state_dict())
    got += _indices(_take(b, 3))
    c = loadwise.loader(data, 50, seed=9)
    c.load_state_dict(b.state_dict())
    got += _indices(list(c))
    assert got == epoch_order(len(data), 9, 0).tolist()

    # A state taken right after the last batch of an epoch points at the next epoch.
    ended = c.state_dict()
    assert (ended["epoch"], ended["position"]) == (1, 0)
    d = loadwise.loader(data, 50, seed=9)
    d.load_state_dict(ended)
    assert _indices(list(d)) == epoch_order(len(data), 9, 1).tolist()


def test_state_survives_torch_save_in_a_checkpoint(arrays_packed: Path) -> None:
    data = loadwise.open(arrays_packed, "lazy")
    first = loadwise.loader(data, 16, seed=2, shuffle=False)
    _take(first, 5)
    buffer = io.BytesIO()
    torch.save({"loader": first.state_dict(), "step": 5}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)  # our own checkpoint, plain numbers
    again = loadwise.loader(data, 16, seed=2, shuffle=False)
    again.load_state_dict(checkpoint["loader"])
    assert next(iter(again))["index"][0].item() == 80


def test_len_counts_only_what_is_left(arrays_packed: Path) -> None:
    data = loadwise.open(arrays_packed, "lazy")
    first = loadwise.loader(data, 32, seed=0)
    _take(first, 2)
    again = loadwise.loader(data, 32, seed=0)
    again.load_state_dict(first.state_dict())
    assert len(again) == len(list(again)) == 8  # 300 / 32 -> 10 batches, 2 taken


def test_padded_and_dropped_rank_shares(arrays_packed: Path) -> None:
    data = loadwise.open(arrays_packed, "lazy")
    shares = []
    for pad in (True, False):
        for rank in (0, 1, 2, 3):
            cfg = DataLoaderConfig(batch_size=40, generator_seed=4, pad_ranks=pad)
            one = loadwise.loader(data, config=cfg)
            one.rank, one.world = rank, 7  # as torch.distributed would report
            one.sampler = one._epoch_sampler()
            one.dataloader = one._dataloader()
            shares.append((pad, rank, _indices(list(one))))
    padded = [s for pad, _, s in shares if pad]
    dropped = [s for pad, _, s in shares if not pad]
    assert {len(s) for s in padded} == {43} and {len(s) for s in dropped} == {42}
    everyone = Counter(i for s in dropped for i in s)
    assert max(everyone.values()) == 1  # disjoint


def test_changes_that_alter_the_order_are_refused(arrays_packed: Path) -> None:
    data = loadwise.open(arrays_packed, "lazy")
    first = loadwise.loader(data, 32, seed=3)
    _take(first, 1)
    saved = first.state_dict()
    with pytest.raises(ResumeError, match="seed"):
        loadwise.loader(data, 32, seed=4).load_state_dict(saved)
    with pytest.raises(ResumeError, match="pad_ranks"):  # a world size may change (elastic)
        loadwise.loader(data, 32, seed=3).load_state_dict({**saved, "pad_ranks": False})
    with pytest.raises(ResumeError, match="number of samples"):
        loadwise.loader(data, 32, seed=3).load_state_dict({**saved, "num_samples": 5})
    with pytest.raises(ResumeError, match="version"):
        loadwise.loader(data, 32, seed=3).load_state_dict({"epoch": 0})
    with pytest.raises(ResumeError, match="integer"):
        loadwise.loader(data, 32, seed=3).load_state_dict({**saved, "position": -1})


def test_custom_sampler_cannot_be_resumed(arrays_packed: Path) -> None:
    data = loadwise.open(arrays_packed, "lazy")
    sampler = torch.utils.data.SequentialSampler(range(len(data)))
    custom = loadwise.loader(data, config=DataLoaderConfig(custom_sampler=sampler))
    with pytest.raises(ResumeError, match="custom sampler"):
        custom.state_dict()


def test_every_batch_names_its_samples_on_the_per_sample_path(arrays_packed: Path) -> None:
    data = loadwise.open(arrays_packed, "lazy")
    cfg = DataLoaderConfig(batch_size=10, memory_efficient=False, generator_seed=8)
    got = _indices(list(loadwise.loader(data, config=cfg)))
    assert got == epoch_order(len(data), 8, 0).tolist()
    assert np.array_equal(np.sort(got), np.arange(len(data)))


@given(
    n=st.integers(1, 300),
    world=st.integers(1, 4),
    batch=st.integers(1, 40),
    cut=st.integers(0, 400),
    pad=st.booleans(),
    seed=st.integers(0, 3),
)
def test_sampler_resumed_anywhere_continues_the_share_exactly(
    n: int, world: int, batch: int, cut: int, pad: bool, seed: int
) -> None:
    shares = []
    for rank in range(world):
        order = lambda e: epoch_order(n, seed, e)  # noqa: E731
        full = EpochBatchSampler(order, n, batch, False, rank, world, pad)
        whole = np.concatenate(list(full)) if len(full) else np.empty(0, np.int64)
        assert len(whole) == full.share
        start = min(cut, full.share)
        resumed = EpochBatchSampler(order, n, 7, False, rank, world, pad)
        resumed.set_epoch(0, start)
        rest = [b for b in resumed]
        assert len(rest) == len(resumed)
        tail = np.concatenate(rest) if rest else np.empty(0, np.int64)
        assert np.array_equal(np.concatenate([whole[:start], tail]), whole)
        shares.append(whole)
    together = np.concatenate(shares)
    if pad:
        assert set(together.tolist()) == set(range(n))  # every index, the pad repeats a few
    else:
        assert len(set(together.tolist())) == len(together)  # disjoint, the tail dropped
