"""Few-shot demo: a prototypical network trained on CPU with three ways of feeding it tasks.

1. Draw an Omniglot-shaped tree (``loadwise.testing.make_omniglot_tree``) into
   ``demo-data/fewshot/`` (kept if complete) and split it by alphabet: background alphabets to
   train on, held-out evaluation alphabets to test on.
2. Train the same network from the same initialisation on the same tasks (5-way 1-shot
   15-query, task ``i`` fixed by ``(seed, i)``) fed by each contender:
   - ``on-the-fly``: ``OmniglotTaskDataset(OmniglotDataset(folder))`` in a ``DataLoader`` with
     0 and 2 workers: every drawing's PNG decoded when a task needs it (the usual loader);
   - ``prefetched``: ``OmniglotTaskDataset(PrefetchedOmniglotDataset(folder))``: packed once,
     held in one shared-memory array;
   - ``packed eager``: ``loadwise.loader(loadwise.episodes(packed, ...))``: one gather per batch.
3. Print per contender the data-wait fraction (time in ``next(batches)`` over the loop's time),
   steps/s and 5-way 1-shot accuracy on the held-out alphabets, and whether the loss curves
   are identical (they should be: same tasks, same seed).

``--quick`` (used by ``make demo``) takes under a minute including drawing the data.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

import loadwise
from loadwise.compat.omniglot import (
    OmniglotDataset,
    OmniglotTaskDataset,
    PrefetchedOmniglotDataset,
)
from loadwise.sampling.episodes import episodes
from loadwise.testing import make_omniglot_tree

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "demo-data" / "fewshot"
N_WAY, K_SHOT, K_QUERY = 5, 1, 15
INPUT_SIDE = 28  # drawings are shrunk to 28x28 inside the step, as Omniglot models usually do


@dataclass(frozen=True)
class Settings:
    """What one run trains on and for how long."""

    alphabets: int
    characters: int
    drawings: int
    held_out: int  # evaluation alphabets
    steps: int
    tasks_per_step: int
    test_tasks: int
    channels: int
    seed: int = 0


QUICK = Settings(10, 20, 20, 3, steps=30, tasks_per_step=2, test_tasks=200, channels=32)
FULL = Settings(30, 30, 20, 10, steps=250, tasks_per_step=4, test_tasks=1000, channels=64)


# --- data ------------------------------------------------------------------------------------


def ensure_split(root: Path, s: Settings) -> tuple[Path, Path]:
    """Draw the tree once (a marker file says it is complete) and split it by alphabet."""
    tree = root / f"omniglot-{s.alphabets}x{s.characters}x{s.drawings}"
    done = tree / ".complete"
    if not done.exists():
        if tree.exists():
            import shutil

            shutil.rmtree(tree)
        started = time.perf_counter()
        made = make_omniglot_tree(
            tree / "all", alphabets=s.alphabets, characters=s.characters, drawings=s.drawings,
            seed=s.seed, workers=os.cpu_count() or 1,
        )  # fmt: skip
        print(f"drew {made.n_images:,} PNGs in {time.perf_counter() - started:.1f} s")
        alphabets = sorted(p.name for p in (tree / "all").iterdir())
        for split, names in (("background", alphabets[: -s.held_out]),
                             ("evaluation", alphabets[-s.held_out :])):  # fmt: skip
            (tree / split).mkdir()
            for name in names:
                (tree / split / name).symlink_to(Path("..") / "all" / name)
        done.touch()
    return tree / "background", tree / "evaluation"


def ensure_packed(folder: Path) -> Path:
    """The packed form of a split, packed once beside it."""
    dest = folder.with_suffix(".loadwise")
    if not (dest / "manifest.json").exists():
        report = loadwise.pack(folder, dest, workers=os.cpu_count() or 1, overwrite=True,
                               progress=False)  # fmt: skip
        print(f"packed {report.num_samples:,} drawings of {folder.name} in {report.seconds:.1f} s")
    return dest


# --- the model -------------------------------------------------------------------------------


class ProtoNet(nn.Module):
    """Four conv blocks to an embedding; a class is the mean embedding of its support."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for c_in in (1, channels, channels, channels):
            blocks += [nn.Conv2d(c_in, channels, 3, padding=1), nn.BatchNorm2d(channels),
                       nn.ReLU(), nn.MaxPool2d(2)]  # fmt: skip
        self.net = nn.Sequential(*blocks, nn.Flatten())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = 1.0 - images.float() / 255.0  # ink = 1
        x = F.interpolate(x, size=(INPUT_SIDE, INPUT_SIDE), mode="area")
        return self.net(x)


def episode_loss(model: nn.Module, batch: Any, n_way: int) -> tuple[torch.Tensor, float]:
    """Mean cross-entropy and accuracy of the queries against prototypes, over a batch of tasks."""
    support, support_labels, query, query_labels = as_tuple(batch)
    tasks, n_support, n_query = support.shape[0], support.shape[1], query.shape[1]
    embedded = model(torch.cat([support.flatten(0, 1), query.flatten(0, 1)]))
    s = embedded[: tasks * n_support].view(tasks, n_support, -1)
    q = embedded[tasks * n_support :].view(tasks, n_query, -1)
    one_hot = F.one_hot(support_labels, n_way).float()  # [T, S, n_way]
    prototypes = one_hot.transpose(1, 2) @ s / one_hot.sum(1)[..., None]
    logits = -torch.cdist(q, prototypes).pow(2)
    loss = F.cross_entropy(logits.flatten(0, 1), query_labels.flatten())
    accuracy = (logits.argmax(-1) == query_labels).float().mean().item()
    return loss, accuracy


def as_tuple(batch: Any) -> tuple[torch.Tensor, ...]:
    """Batches from ``loadwise.episodes`` are dicts; from ``OmniglotTaskDataset``, tuples."""
    if isinstance(batch, dict):
        return tuple(batch[k] for k in ("support", "support_labels", "query", "query_labels"))
    return tuple(batch)


# --- training and testing --------------------------------------------------------------------


@dataclass
class Run:
    """One contender's training: losses per step and where the loop's time went."""

    name: str
    workers: int
    losses: list[float] = field(default_factory=list)
    wait_seconds: float = 0.0
    loop_seconds: float = 0.0
    accuracy: float = float("nan")

    @property
    def wait_fraction(self) -> float:
        return self.wait_seconds / self.loop_seconds if self.loop_seconds else 0.0


def train(
    model: nn.Module, batches: Iterable[Any], steps: int, run: Run, n_way: int = N_WAY
) -> Run:
    """``steps`` Adam steps; ``next(batches)`` is timed apart from the step."""
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    iterator: Iterator[Any] = iter(batches)
    started = time.perf_counter()
    for _ in range(steps):
        asked = time.perf_counter()
        batch = next(iterator)
        run.wait_seconds += time.perf_counter() - asked
        loss, _ = episode_loss(model, batch, n_way)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        run.losses.append(loss.item())
    run.loop_seconds = time.perf_counter() - started
    return run


@torch.no_grad()
def test_accuracy(model: nn.Module, packed: Path, s: Settings) -> float:
    """Mean 5-way 1-shot query accuracy on tasks of the held-out alphabets."""
    model.eval()
    tasks = episodes(packed, n_way=N_WAY, k_shot=K_SHOT, k_query=K_QUERY,
                     num_tasks=s.test_tasks, seed=s.seed + 10_000)  # fmt: skip
    scores = [episode_loss(model, b, N_WAY)[1] * len(b["index"])
              for b in loadwise.loader(tasks, batch_size=50, shuffle=False)]  # fmt: skip
    return sum(scores) / s.test_tasks


def contenders(background: Path, s: Settings) -> Iterator[tuple[str, int, Iterable[Any]]]:
    """(name, workers, batches) for each way of feeding the same tasks in the same order."""
    num_tasks = s.steps * s.tasks_per_step
    shape = (N_WAY, K_SHOT, K_QUERY, num_tasks, s.seed)
    fly = OmniglotTaskDataset(OmniglotDataset(background), *shape)
    for workers in (0, 2):
        yield "on-the-fly", workers, DataLoader(fly, s.tasks_per_step, num_workers=workers)
    fast = OmniglotTaskDataset(PrefetchedOmniglotDataset(background, progress=False), *shape)
    yield "prefetched", 0, DataLoader(fast, s.tasks_per_step)
    packed = episodes(ensure_packed(background), "label", N_WAY, K_SHOT, K_QUERY,
                      num_tasks=num_tasks, seed=s.seed)  # fmt: skip
    yield "packed eager", 0, loadwise.loader(packed, s.tasks_per_step, shuffle=False)


def warm_up(s: Settings) -> None:
    """A few steps of a throwaway network, so the first contender does not pay torch's start."""
    model = ProtoNet(s.channels)
    images = torch.zeros(
        s.tasks_per_step, N_WAY * (K_SHOT + K_QUERY), 1, 105, 105, dtype=torch.uint8
    )
    labels = torch.arange(N_WAY).repeat_interleave(K_SHOT + K_QUERY).expand(s.tasks_per_step, -1)
    for _ in range(3):
        episode_loss(model, (images, labels, images, labels), N_WAY)[0].backward()


def run_all(s: Settings, root: Path) -> list[Run]:
    """Train one fresh, identically initialised network per contender, then test each."""
    background, evaluation = ensure_split(root, s)
    evaluation_packed = ensure_packed(evaluation)
    warm_up(s)
    runs = []
    for name, workers, batches in contenders(background, s):
        torch.manual_seed(s.seed)
        model = ProtoNet(s.channels)
        run = train(model, batches, s.steps, Run(name, workers))
        tested = time.perf_counter()
        run.accuracy = test_accuracy(model, evaluation_packed, s)
        runs.append(run)
        print(f"  {name} ({workers} workers): trained in {run.loop_seconds:.1f} s, loss "
              f"{run.losses[0]:.3f} -> {sum(run.losses[-5:]) / 5:.3f}, tested in "
              f"{time.perf_counter() - tested:.1f} s")  # fmt: skip
    return runs


def table(runs: list[Run], s: Settings) -> str:
    lines = [
        f"{'contender':<14}{'workers':>8}{'steps/s':>9}{'data wait':>11}{'test acc':>10}",
        "-" * 52,
    ]
    for r in runs:
        lines.append(f"{r.name:<14}{r.workers:>8}{s.steps / r.loop_seconds:>9.1f}"
                     f"{r.wait_fraction:>10.1%}{r.accuracy:>10.1%}")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (used by make demo)")
    parser.add_argument("--steps", type=int, help="training steps per contender")
    parser.add_argument("--data", type=Path, default=DATA, help="where the drawings are kept")
    args = parser.parse_args()
    s = QUICK if args.quick else FULL
    if args.steps:
        s = Settings(**{**s.__dict__, "steps": args.steps})
    os.environ.setdefault("LOADWISE_CACHE", str(args.data / "cache"))
    started = time.perf_counter()
    print(f"few-shot demo: {N_WAY}-way {K_SHOT}-shot {K_QUERY}-query, {s.tasks_per_step} tasks "
          f"per step, {s.steps} steps per contender, {s.alphabets - s.held_out} background and "
          f"{s.held_out} held-out alphabets")  # fmt: skip
    runs = run_all(s, args.data)
    print()
    print(table(runs, s))
    same = all(r.losses == runs[0].losses for r in runs)
    best = max(r.wait_fraction for r in runs if r.name != "on-the-fly")  # worst loadwise one
    print(f"\nchance accuracy: {1 / N_WAY:.0%}; identical loss curves across contenders: "
          f"{'yes' if same else 'NO'}")  # fmt: skip
    print(f"data wait with loadwise: {best:.1%} (target < 5%: {'PASS' if best < 0.05 else 'FAIL'});"
          f" total {time.perf_counter() - started:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
