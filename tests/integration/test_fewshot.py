"""The few-shot demo end to end on tiny data: same seed, same losses, whatever feeds the tasks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from examples import fewshot_protonet as demo
from torch.utils.data import DataLoader

import loadwise
from loadwise.compat.omniglot import OmniglotTaskDataset, PrefetchedOmniglotDataset
from loadwise.sampling.episodes import episodes

N_WAY, STEPS = 3, 4


def _losses(batches: object, steps: int = STEPS) -> list[float]:
    torch.manual_seed(0)
    model = demo.ProtoNet(channels=4)
    return demo.train(model, batches, steps, demo.Run("test", 0), n_way=N_WAY).losses  # type: ignore[arg-type]


def test_loss_curves_are_identical_with_0_and_2_workers(omniglot_packed: Path) -> None:
    shape = {"n_way": N_WAY, "k_shot": 1, "k_query": 2, "num_tasks": 2 * STEPS, "seed": 3}
    tasks = episodes(omniglot_packed, **shape)
    packed = [_losses(loadwise.loader(tasks, 2, shuffle=False, num_workers=w)) for w in (0, 2)]
    prefetched = OmniglotTaskDataset(
        PrefetchedOmniglotDataset(omniglot_packed, progress=False), **shape
    )
    plain = [_losses(DataLoader(prefetched, batch_size=2, num_workers=w)) for w in (0, 2)]
    assert len(packed[0]) == STEPS and all(loss > 0 for loss in packed[0])
    assert packed[0] == packed[1] == plain[0] == plain[1]
    reseeded = episodes(omniglot_packed, **{**shape, "seed": 4})
    assert _losses(loadwise.loader(reseeded, 2, shuffle=False)) != packed[0]


def test_a_resumed_loader_continues_the_same_tasks(omniglot_packed: Path) -> None:
    tasks = episodes(omniglot_packed, n_way=N_WAY, k_shot=1, k_query=2, num_tasks=12, seed=1)
    whole = [b["index"].tolist() for b in loadwise.loader(tasks, 3, seed=5)]
    first = loadwise.loader(tasks, 3, seed=5)
    iterator = iter(first)
    seen = [next(iterator)["index"].tolist() for _ in range(2)]
    state = first.state_dict()
    resumed = loadwise.loader(tasks, 3, seed=5)
    resumed.load_state_dict(state)
    rest = [b for b in resumed]
    assert seen + [b["index"].tolist() for b in rest] == whole
    assert torch.equal(rest[0]["support"], tasks.get_batch(whole[2])["support"])


def test_the_demo_trains_every_contender_alike(tmp_path: Path) -> None:
    tiny = dataclasses.replace(
        demo.QUICK, alphabets=3, characters=5, drawings=16, held_out=1, steps=3,
        tasks_per_step=2, test_tasks=4, channels=4,
    )  # fmt: skip
    runs = demo.run_all(tiny, tmp_path)
    assert [(r.name, r.workers) for r in runs] == [
        ("on-the-fly", 0), ("on-the-fly", 2), ("prefetched", 0), ("packed eager", 0)
    ]  # fmt: skip
    assert all(r.losses == runs[0].losses and len(r.losses) == 3 for r in runs)
    assert all(0.0 <= r.accuracy <= 1.0 and 0.0 <= r.wait_fraction < 1.0 for r in runs)
    assert "packed eager" in demo.table(runs, tiny)


@pytest.mark.slow
def test_the_quick_demo_beats_chance_on_held_out_alphabets(tmp_path: Path) -> None:
    runs = demo.run_all(demo.QUICK, tmp_path)
    assert all(r.losses == runs[0].losses for r in runs)
    assert runs[-1].accuracy > 2 / demo.N_WAY  # chance is 1 / N_WAY
