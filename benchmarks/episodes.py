"""Few-shot benchmark: episodes/s on the fly vs prefetched vs packed, prefetch time and memory.

    .venv/bin/python -m benchmarks.episodes [--quick]

1. Draws an Omniglot-shaped tree into ``bench-data/episodes/`` (kept once complete): the full
   run has the size of Omniglot's background split, 964 characters x 20 drawings of 105x105
   (4 alphabets x 241 characters); ``--quick`` has 200 characters. Packs it once.
2. Episodes/s for 5-way 1-shot 15-query and 20-way 5-shot 5-query, batches of 16 tasks, with
   each contender at each worker count, over at least a few batches and seconds (the first
   batch, which starts the workers, and one second after it are not timed: steady state):
   - ``on-the-fly``: ``OmniglotTaskDataset(OmniglotDataset(folder))``, PNGs decoded per task;
   - ``prefetched``: ``OmniglotTaskDataset(PrefetchedOmniglotDataset(packed))`` through a
     plain ``DataLoader``, as the source documents show;
   - ``prefetched+lw``: the same tasks through ``loadwise.loader`` (``get_batch``, no collate);
   - ``packed``: ``loadwise.loader(loadwise.episodes(packed))``;
   - ``ceiling``: one ready batch of prefetched tasks served again and again through the same
     ``DataLoader``: torch's own cost per batch of such items, the bound for ``prefetched``.
   Contenders take turns, ``rounds`` times, each row keeping its best (this machine is shared).
   Ratios are against the on-the-fly dataset at its best worker count, in the same run; the
   targets are judged on the median over rounds of each round's own ratio.
3. Prefetch time from the packed dataset (page cache warm, best of 3) and peak PSS of main + 4
   workers while ``DataLoader(tasks, batch_size=16, num_workers=4)`` serves 5-way 1-shot
   15-query tasks from the prefetched dataset, each in a fresh subprocess, beside the same
   tree serving no data (what python + torch cost by themselves).
4. Prints a table and the targets, and writes ``bench-results/episodes.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

import loadwise
from loadwise.compat.omniglot import (
    OmniglotDataset,
    OmniglotTaskDataset,
    PrefetchedOmniglotDataset,
)
from loadwise.monitoring import PeakMemory
from loadwise.sampling.episodes import episodes
from loadwise.testing import make_omniglot_tree

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench-data" / "episodes"
RESULTS = REPO / "bench-results" / "episodes.json"
CONFIGS = {"5w1s15q": (5, 1, 15), "20w5s5q": (20, 5, 5)}
CONTENDERS = ("on-the-fly", "prefetched", "prefetched+lw", "packed", "ceiling")
TASKS_PER_BATCH, SEED, WARMUP_S, NUM_TASKS = 16, 0, 1.0, 100_000
MiB, MB = 2**20, 10**6
SPEED_TARGET, PREFETCH_TARGET_S, PSS_FACTOR, PSS_SLACK = 20.0, 2.0, 1.15, 150 * MB
MEMORY_WORKERS, MEMORY_SHAPE = 4, "5w1s15q"


@dataclass(frozen=True)
class Scale:
    """How much data and how many batches one run measures."""

    alphabets: int
    characters: int
    drawings: int
    batches: int
    seconds: float  # at least this long per row
    workers: tuple[int, ...]
    rounds: int  # every contender and worker count once a round, in turn; the best counts


QUICK = Scale(4, 50, 20, batches=3, seconds=1.0, workers=(0, 2), rounds=2)
FULL = Scale(4, 241, 20, batches=8, seconds=2.0, workers=(0, 2, 4), rounds=5)


def ensure_data(scale: Scale) -> tuple[Path, Path]:
    """The tree (drawn once; a marker says it is complete) and its packed form."""
    tree = DATA / f"omniglot-{scale.alphabets}x{scale.characters}x{scale.drawings}"
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        started = time.perf_counter()
        made = make_omniglot_tree(
            tree / "images", alphabets=scale.alphabets, characters=scale.characters,
            drawings=scale.drawings, seed=SEED, workers=os.cpu_count() or 1,
        )  # fmt: skip
        print(f"drew {made.n_images:,} PNGs in {time.perf_counter() - started:.0f} s")
        (tree / ".complete").touch()
    packed = tree / "images.loadwise"
    if not (packed / "manifest.json").exists():
        report = loadwise.pack(tree / "images", packed, workers=os.cpu_count() or 1,
                               overwrite=True, progress=False)  # fmt: skip
        print(f"packed {report.num_samples:,} drawings in {report.seconds:.1f} s")
    return tree / "images", packed


# --- episodes/s ------------------------------------------------------------------------------


def batches_of(
    name: str, tree: Path, packed: Path, shape: tuple[int, int, int], workers: int
) -> Any:
    """The batches of 16 tasks one contender serves (``shape`` = n_way, k_shot, k_query);
    tasks are the same for every contender."""
    n_way, k_shot, k_query = shape
    if name == "packed":
        tasks = episodes(packed, "label", n_way, k_shot, k_query, num_tasks=NUM_TASKS, seed=SEED)
        return loadwise.loader(tasks, TASKS_PER_BATCH, shuffle=False, num_workers=workers)
    source = OmniglotDataset(tree) if name == "on-the-fly" else PrefetchedOmniglotDataset(
        packed, progress=False
    )  # fmt: skip
    tasks_ds = OmniglotTaskDataset(source, n_way, k_shot, k_query, NUM_TASKS, SEED)
    if name == "prefetched+lw":
        return loadwise.loader(tasks_ds, TASKS_PER_BATCH, shuffle=False, num_workers=workers)
    if name == "ceiling":
        ready = _Ready(tasks_ds.__getitems__(range(TASKS_PER_BATCH)), NUM_TASKS)
        return DataLoader(ready, TASKS_PER_BATCH, num_workers=workers)
    return DataLoader(tasks_ds, TASKS_PER_BATCH, num_workers=workers)


class _Ready(Dataset):
    """One batch of tasks made once and served again and again: no sampling, no reads.

    Through the same plain ``DataLoader`` it measures what torch itself costs per batch of
    these items (default collate's stack into fresh memory, shared memory and pickling
    from workers): the most any dataset of such items can reach that way.
    """

    def __init__(self, items: list[Any], length: int) -> None:
        self.items, self.length = items, length

    def __len__(self) -> int:
        return self.length

    def __getitems__(self, indices: list[int]) -> list[Any]:
        return self.items[: len(indices)]


def episodes_per_second(batches: Iterable[Any], count: int, seconds: float) -> float:
    """Tasks per second over at least ``count`` batches and ``seconds``, after a first batch
    (which starts the workers) and ``WARMUP_S`` untimed: steady state, as in a long training
    run. The first batches of a fresh process can be 10x slower here while the allocator and
    the kernel hand out fresh pages for the batch buffers (measured: 63 ms, then 5-6 ms a
    batch of prefetched 5-way 1-shot tasks)."""
    iterator: Iterator[Any] = iter(batches)
    next(iterator)
    warm = time.perf_counter()
    while time.perf_counter() - warm < WARMUP_S:
        next(iterator)
    started, done = time.perf_counter(), 0
    while done < count or time.perf_counter() - started < seconds:
        next(iterator)
        done += 1
    return done * TASKS_PER_BATCH / (time.perf_counter() - started)


def measure_speed(scale: Scale, tree: Path, packed: Path) -> list[dict[str, Any]]:
    """Every (config, contender, workers) once a round, in turn, so a slow spell of this
    shared machine hits all alike; each row keeps its best round and all tries."""
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    for round_ in range(scale.rounds):
        for config, shape in CONFIGS.items():
            for name in CONTENDERS:
                for workers in scale.workers:
                    batches = batches_of(name, tree, packed, shape, workers)
                    rate = episodes_per_second(batches, scale.batches, scale.seconds)
                    del batches  # stop its workers before the next contender starts
                    row = rows.setdefault((config, name, workers), {
                        "config": config, "contender": name, "workers": workers, "tries": []
                    })  # fmt: skip
                    row["tries"].append(rate)
                    row["episodes_per_s"] = max(row["tries"])
                    print(f"  round {round_ + 1} {config} {name:<13} {workers} workers: "
                          f"{rate:8.1f} episodes/s")  # fmt: skip
    return list(rows.values())


# --- prefetch time and memory (fresh subprocesses) -------------------------------------------


class _Nothing(Dataset):
    """Task-shaped indices and no data: what the process tree costs by itself."""

    def __len__(self) -> int:
        return 10_000

    def __getitem__(self, index: int) -> int:
        return index


def child(kind: str, packed: Path, batches: int) -> dict[str, Any]:
    """One measurement in this (fresh) process: ``prefetch``, ``memory`` or ``idle``."""
    if kind == "prefetch":
        times = []
        for _ in range(3):
            started = time.perf_counter()
            dataset = PrefetchedOmniglotDataset(packed, progress=False)
            times.append(time.perf_counter() - started)
            decoded = dataset.report.decoded_bytes
            del dataset
        return {"seconds": times, "decoded_bytes": decoded}
    with PeakMemory(interval=0.02, max_cpu=1.0) as memory:
        if kind == "memory":
            source = PrefetchedOmniglotDataset(packed, progress=False)
            n_way, k_shot, k_query = CONFIGS[MEMORY_SHAPE]
            data: Dataset = OmniglotTaskDataset(source, n_way, k_shot, k_query, 10_000, SEED)
        else:
            data = _Nothing()
        loader = DataLoader(data, TASKS_PER_BATCH, num_workers=MEMORY_WORKERS)  # as documented
        batch_bytes = 0
        for i, batch in enumerate(loader):
            batch_bytes = (
                sum(t.numel() * t.element_size() for t in batch) if i == 0 else batch_bytes
            )
            if i >= batches:
                break
    return {"peak_pss": memory.peak_pss, "by_role": dict(memory.peak_by_role),
            "in_flight_bytes": batch_bytes * MEMORY_WORKERS * 2}  # fmt: skip


def in_subprocess(kind: str, packed: Path, batches: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.episodes", "--child", kind, "--packed",
               str(packed), "--batches", str(batches)]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- report ----------------------------------------------------------------------------------


def best(rows: list[dict[str, Any]], config: str, name: str) -> dict[str, Any]:
    mine = [r for r in rows if r["config"] == config and r["contender"] == name]
    return max(mine, key=lambda r: r["episodes_per_s"])


def median_round_ratio(rows: list[dict[str, Any]], config: str, name: str) -> float:
    """The ratio within each round (each side at its best worker count that round), median
    over rounds: a slow spell hits both sides of one round alike."""

    def per_round(contender: str) -> list[float]:
        mine = [r["tries"] for r in rows if r["config"] == config and r["contender"] == contender]
        return [max(tries) for tries in zip(*mine, strict=True)]

    ratios = [a / b for a, b in zip(per_round(name), per_round("on-the-fly"), strict=True)]
    return float(statistics.median(ratios))


def table(rows: list[dict[str, Any]], workers: tuple[int, ...]) -> tuple[str, list[str]]:
    """The speed table, and one target line per config."""
    head = f"{'config':<9}{'contender':<15}" + "".join(f"{f'w={w}':>10}" for w in workers)
    lines = [head + f"{'best':>10}{'vs on-the-fly':>15}", "-" * (len(head) + 25)]
    checks = []
    for config in CONFIGS:
        baseline = best(rows, config, "on-the-fly")["episodes_per_s"]
        for name in CONTENDERS:
            rates = {r["workers"]: r["episodes_per_s"] for r in rows
                     if r["config"] == config and r["contender"] == name}  # fmt: skip
            top = best(rows, config, name)
            lines.append(f"{config:<9}{name:<15}" + "".join(f"{rates[w]:>10.1f}" for w in workers)
                         + f"{top['episodes_per_s']:>10.1f}"
                         + f"{top['episodes_per_s'] / baseline:>14.1f}x")  # fmt: skip
        paired = {n: median_round_ratio(rows, config, n) for n in CONTENDERS[1:4]}
        fastest_prefetched = max(paired["prefetched"], paired["prefetched+lw"])
        verdict = "PASS" if min(fastest_prefetched, paired["packed"]) >= SPEED_TARGET else "FAIL"
        checks.append(
            f"{config}, median round vs on the fly: prefetched {paired['prefetched']:.1f}x "
            f"(plain DataLoader), {paired['prefetched+lw']:.1f}x (loadwise.loader); packed "
            f"{paired['packed']:.1f}x (target >= {SPEED_TARGET:.0f}x): {verdict}"
        )
    checks.append(
        "(+lw: the same prefetched tasks through loadwise.loader, one get_batch a batch and no "
        "collate; ceiling: the plain DataLoader serving one ready batch again and again, no "
        "dataset work: what torch's collate and worker transport allow)"
    )
    return "\n".join(lines), checks


def memory_lines(prefetch: dict[str, Any], used: dict[str, Any], idle: dict[str, Any]) -> list[str]:
    decoded, fastest = prefetch["decoded_bytes"], min(prefetch["seconds"])
    limit = PSS_FACTOR * decoded + PSS_SLACK
    extra, in_flight = used["peak_pss"] - idle["peak_pss"], used["in_flight_bytes"]
    fast_enough = "PASS" if fastest < PREFETCH_TARGET_S else "FAIL"
    return [
        f"prefetch from packed: {fastest:.2f} s for {decoded / MiB:,.0f} MiB decoded "
        f"(target < {PREFETCH_TARGET_S:.0f} s): {fast_enough}",
        f"peak PSS, main + {MEMORY_WORKERS} workers serving {MEMORY_SHAPE} tasks: "
        f"{used['peak_pss'] / MiB:,.0f} MiB; target <= 1.15 x decoded + 150 MB = "
        f"{limit / MiB:,.0f} MiB: {'PASS' if used['peak_pss'] <= limit else 'FAIL'}",
        f"  the same tree with no data: {idle['peak_pss'] / MiB:,.0f} MiB; the data adds "
        f"{extra / MiB:,.0f} MiB = {extra / decoded:.2f} x decoded, of which up to "
        f"{in_flight / MiB:,.0f} MiB are batches in flight ({MEMORY_WORKERS} workers x "
        f"prefetch 2 x {in_flight / MEMORY_WORKERS / 2 / MiB:.0f} MiB)",
    ]


def run(scale: Scale) -> None:
    started = time.perf_counter()
    tree, packed = ensure_data(scale)
    print(
        f"threads: {torch.get_num_threads()}, cores: {os.cpu_count()}; batches of "
        f"{TASKS_PER_BATCH} tasks; >= {scale.batches} batches, {scale.seconds:.0f} s a row"
    )
    rows = measure_speed(scale, tree, packed)
    prefetch = in_subprocess("prefetch", packed, 0)
    used = in_subprocess("memory", packed, 2 * scale.batches)
    idle = in_subprocess("idle", packed, 2 * scale.batches)
    text, checks = table(rows, scale.workers)
    print("\nepisodes/s (tasks per second, batches of 16)\n" + text + "\n")
    for line in checks + memory_lines(prefetch, used, idle):
        print(line)
    print(f"total {time.perf_counter() - started:.0f} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"scale": scale.__dict__, "rows": rows, "prefetch": prefetch,
                                   "memory": used, "idle": idle}, indent=1))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 characters, fewer batches")
    parser.add_argument("--child", choices=("prefetch", "memory", "idle"), help=argparse.SUPPRESS)
    parser.add_argument("--packed", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.packed, args.batches)))
        return
    run(QUICK if args.quick else FULL)


if __name__ == "__main__":
    main()
