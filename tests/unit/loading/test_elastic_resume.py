"""Elastic resume through real loaders: an epoch interrupted on one world size and finished
on another yields every sample of the epoch once (ranks as torch.distributed reports them;
the multi-process proof with torchrun is in tests/integration/test_elastic_torchrun.py)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import loadwise
from loadwise.errors import ResumeError
from loadwise.loading import DataLoaderConfig


def _ranks(data: Any, world: int, pad: bool = False, batch: int = 8) -> list[loadwise.Loader]:
    loaders = []
    for rank in range(world):
        cfg = DataLoaderConfig(batch_size=batch, generator_seed=11, pad_ranks=pad)
        one = loadwise.loader(data, config=cfg)
        one.rank, one.world = rank, world  # as torch.distributed would report
        one.sampler = one._epoch_sampler()
        one.dataloader = one._dataloader()
        loaders.append(one)
    return loaders


def _step(loaders: list[loadwise.Loader], steps: int, seen: Counter[int]) -> None:
    """``steps`` batches on every rank, in lockstep as under DDP (iterators left open)."""
    iterators = [iter(loader) for loader in loaders]
    for _ in range(steps):
        for it in iterators:
            seen.update(next(it)["index"].tolist())


def _rest(loaders: list[loadwise.Loader], seen: Counter[int]) -> None:
    for loader in loaders:
        seen.update(i for b in loader for i in b["index"].tolist())


@pytest.mark.parametrize("trial", range(4))
def test_an_epoch_finished_on_another_world_sees_every_sample_once(
    arrays_packed: Path, trial: int
) -> None:
    """Killed at a random step on 1-3 ranks, resumed on 1-3 (then again), drop_last off and
    no padding: each of the 300 samples once, but a final tail shorter than the world."""
    rng = random.Random(trial)
    data = loadwise.open(arrays_packed, "lazy")
    worlds = [rng.randint(1, 3) for _ in range(3)]
    seen: Counter[int] = Counter()
    states: list[dict[str, Any]] = []
    for k, world in enumerate(worlds):
        loaders = _ranks(data, world)
        if states:
            for loader in loaders:
                loader.load_state_dict(states if k % 2 else states[:1])  # all, or one (lockstep)
        if k == len(worlds) - 1:
            _rest(loaders, seen)
            break
        _step(loaders, rng.randint(0, max(len(loaders[0]) - 1, 0)), seen)
        states = [loader.state_dict() for loader in loaders]
    assert max(seen.values()) == 1, f"worlds {worlds}: repeated {seen.most_common(3)}"
    assert 300 - len(seen) < worlds[-1], f"worlds {worlds}: {300 - len(seen)} lost"
    # the next epoch on the new world is an ordinary one
    assert all(loader.next_epoch == 1 for loader in loaders)


def test_the_state_carries_the_finished_segments(arrays_packed: Path) -> None:
    data = loadwise.open(arrays_packed, "lazy")
    two = _ranks(data, 2)
    _step(two, 3, Counter())
    saved = [loader.state_dict() for loader in two]
    assert [s["position"] for s in saved] == [24, 24] and saved[0]["segments"] == []
    three = _ranks(data, 3)
    for loader in three:
        loader.load_state_dict(saved)
    _step(three, 1, Counter())
    again = three[2].state_dict()
    assert again["segments"] == [[2, [24, 24]]]
    assert (again["world"], again["rank"], again["position"]) == (3, 2, 8)


def test_states_of_different_steps_are_refused(arrays_packed: Path) -> None:
    data = loadwise.open(arrays_packed, "lazy")
    two = _ranks(data, 2)
    _step(two, 1, Counter())
    first = two[0].state_dict()
    _step(two[1:], 1, Counter())
    loader = _ranks(data, 3)[0]
    with pytest.raises(ResumeError, match="rank"):
        loader.load_state_dict([first, first])  # rank 0 twice, rank 1 missing
    later = {**two[1].state_dict(), "epoch": 1}
    with pytest.raises(ResumeError, match="epoch"):
        loader.load_state_dict([first, later])
