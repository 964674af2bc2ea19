"""What ``loadwise.monitor`` costs: loop time with and without it, in the same run.

    .venv/bin/python -m benchmarks.monitor_overhead [--rounds 7] [--epochs 3]

Packs 20,000 samples of 1x105x105 uint8 (Omniglot-sized, random) into a temporary folder,
opens it eager, and times passes of ``loadwise.loader(batch 64, shuffle)`` plain and wrapped
in ``loadwise.monitor`` (memory sampled every 0.5 s), alternating the two in each round so
machine noise hits both alike. A pass is ``--chain`` epochs chained into one iteration
(3,130 batches by default: seconds long, so memory sampling runs at its steady rate, as in
training, rather than being dominated by the once-per-pass epoch-end snapshot). Two loops:
- ``step 1 ms``: a training step of about 1 ms per batch (matrix products), a typical loop;
- ``no step``: nothing but loading (~300k samples/s here), the worst case for per-batch cost.
Prints median seconds per pass, the overhead of the monitor in percent, and per batch in
microseconds; ``--out PATH`` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

import loadwise
import loadwise.monitoring

N, SIDE, BATCH = 20_000, 105, 64


def make_loader(folder: Path) -> Any:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N, 1, SIDE, SIDE), dtype=np.uint8)
    columns = {"image": images, "label": rng.integers(0, 100, size=N)}
    loadwise.pack(columns, folder / "data.loadwise", progress=False)
    dataset = loadwise.open(folder / "data.loadwise", "eager")
    return loadwise.loader(dataset, BATCH, shuffle=True, seed=0)


def step_of(kind: str) -> Callable[[Any], None]:
    weights = torch.randn(192, 192)

    def one_ms(batch: Any) -> None:
        x = batch["image"][:, 0, :48, :48].float().reshape(len(batch["label"]), -1)
        for _ in range(3):
            (x[:, :192] @ weights).relu().sum()

    return one_ms if kind == "step 1 ms" else (lambda batch: None)


def epoch_seconds(batches: Iterable[Any], step: Callable[[Any], None]) -> float:
    started = time.perf_counter()
    for batch in batches:
        step(batch)
    return time.perf_counter() - started


class Chained:
    """``times`` epochs of ``loader`` as one iteration."""

    def __init__(self, loader: Any, times: int) -> None:
        self.loader, self.times = loader, times

    def __iter__(self) -> Iterator[Any]:
        return itertools.chain.from_iterable(self.loader for _ in range(self.times))

    def __len__(self) -> int:
        return len(self.loader) * self.times


def run(loader: Any, kind: str, rounds: int, epochs: int) -> dict[str, Any]:
    step, plain, monitored = step_of(kind), [], []
    monitor = loadwise.monitor(loader)
    epoch_seconds(loader, step)  # warm up: pages, caches, allocator
    for _ in range(rounds):
        plain += [epoch_seconds(loader, step) for _ in range(epochs)]
        monitored += [epoch_seconds(monitor, step) for _ in range(epochs)]
    base, with_monitor = statistics.median(plain), statistics.median(monitored)
    batches = len(loader)
    stats = monitor.stats()
    return {
        "loop": kind, "batches_per_epoch": batches, "plain_s": base, "monitored_s": with_monitor,
        "overhead_percent": 100 * (with_monitor - base) / base,
        "overhead_us_per_batch": 1e6 * (with_monitor - base) / batches,
        "memory_samples": len(stats.timeline.memory), "data_wait_fraction":
        stats.data_wait_fraction,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=2, help="passes per round and loader")
    parser.add_argument("--chain", type=int, default=10, help="epochs chained into one pass")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        loader = Chained(make_loader(Path(folder)), args.chain)
        rows = [run(loader, kind, args.rounds, args.epochs) for kind in ("step 1 ms", "no step")]
    print(f"{'loop':<10} {'batches':>7} {'plain s/pass':>14} {'monitored':>10} "
          f"{'overhead':>9} {'per batch':>10}")  # fmt: skip
    for r in rows:
        print(f"{r['loop']:<10} {r['batches_per_epoch']:>7} {r['plain_s']:>14.4f} "
              f"{r['monitored_s']:>10.4f} {r['overhead_percent']:>8.2f}% "
              f"{r['overhead_us_per_batch']:>8.1f} us")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
