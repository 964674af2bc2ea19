"""The loadwise demo (``make demo``): per-file PNG loading against packed eager and lazy modes.

1. Draw an Omniglot-shaped tree of 18,000 PNGs into ``demo-data/omniglot`` (kept if complete).
2. Pack it into ``demo-data/omniglot.loadwise``.
3. Read two shuffled, seeded epochs of batch 64 with each contender and worker count, each in a
   fresh subprocess (``demo.py --contender eager --workers 2`` prints one JSON line), so one
   contender's memory cannot leak into the next one's peak PSS.
4. Print a table and the issue's two targets, and write ``demo-data/demo-results.json``.
5. Watch a training-shaped loop (2 ms "step" per batch) with ``loadwise.monitor``: per-file
   with 2 workers, then packed eager; print each report and draw
   ``demo-data/monitor-<contender>-<workers>w.png`` (throughput, data wait, memory per process).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

import loadwise
from loadwise.monitoring import PeakMemory
from loadwise.monitoring import report as monitor_report
from loadwise.testing import make_omniglot_tree

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "demo-data"
TREE = DATA / "omniglot"
PACKED = DATA / "omniglot.loadwise"
RESULTS = DATA / "demo-results.json"

ALPHABETS, CHARACTERS, DRAWINGS, SIZE = 30, 30, 20, 105
N_IMAGES = ALPHABETS * CHARACTERS * DRAWINGS
DECODED_BYTES = N_IMAGES * SIZE * SIZE
BATCH, EPOCHS, SEED = 64, 2, 0
WORKERS = (0, 2)
CONTENDERS = tuple((name, w) for name in ("per-file", "eager", "lazy") for w in WORKERS)
MiB, MB = 2**20, 10**6
WATCHED = (("per-file", 2), ("eager", 0))
STEP_SECONDS = 0.002
SPEED_TARGET = 10.0
PSS_FACTOR, PSS_SLACK = 1.15, 150 * MB


# --- the per-file baseline: what loadwise replaces ------------------------------------------


class PngFiles(Dataset):
    """One PNG opened and decoded with PIL per ``__getitem__``: the usual Omniglot loader."""

    def __init__(self, root: Path) -> None:
        self.paths = sorted(root.glob("*/*/*.png"))
        classes = sorted({p.parent for p in self.paths})
        number = {folder: i for i, folder in enumerate(classes)}
        self.labels = [number[p.parent] for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        with Image.open(self.paths[index]) as image:
            pixels = np.array(image.convert("L"))
        return {"image": torch.from_numpy(pixels).unsqueeze(0), "label": self.labels[index]}


class Nothing(Dataset):
    """No data at all: only indices, for the idle tree's memory."""

    def __len__(self) -> int:
        return N_IMAGES

    def __getitem__(self, index: int) -> int:
        return index


# --- one contender, run inside its own subprocess -------------------------------------------


def open_contender(name: str, workers: int) -> tuple[Any, Iterable[Any]]:
    """(dataset, loader) for ``name``: per-file, eager, lazy or idle."""
    if name in ("per-file", "idle"):
        dataset: Any = PngFiles(TREE) if name == "per-file" else Nothing()
        generator = torch.Generator().manual_seed(SEED)
        batches = DataLoader(
            dataset, batch_size=BATCH, shuffle=True, num_workers=workers, generator=generator
        )
        return dataset, batches
    dataset = loadwise.open(PACKED, name, fields=("image", "label"))
    return dataset, loadwise.loader(dataset, BATCH, shuffle=True, seed=SEED, num_workers=workers)


def timed_epoch(batches: Iterable[Any]) -> tuple[float, int, float]:
    """(seconds, samples, seconds to the first batch) for one pass."""
    started, first, samples = time.perf_counter(), 0.0, 0
    for batch in batches:
        first = first or time.perf_counter()
        samples += len(batch["label"]) if isinstance(batch, dict) else len(batch)
    return time.perf_counter() - started, samples, first - started


def run_contender(name: str, workers: int) -> dict[str, Any]:
    """Open, then read two epochs, sampling the tree's PSS through both phases.

    Opening is sampled every 5 ms whatever that costs: eager's load lasts a fraction of a
    second and maps each shard while copying it, a peak that sparse sampling catches by luck.
    """
    with PeakMemory(interval=0.005, max_cpu=1.0) as opening:
        started = time.perf_counter()
        dataset, batches = open_contender(name, workers)
        open_seconds = time.perf_counter() - started
    with PeakMemory() as reading:
        epochs = [timed_epoch(batches) for _ in range(EPOCHS)]
    if hasattr(dataset, "close"):
        dataset.close()
    seconds, samples = sum(e[0] for e in epochs), sum(e[1] for e in epochs)
    return {
        "contender": name,
        "workers": workers,
        "samples": samples,
        "seconds": seconds,
        "samples_per_s": samples / seconds,
        "epoch_samples_per_s": [e[1] / e[0] for e in epochs],
        "open_s": open_seconds,
        "first_batch_s": open_seconds + epochs[0][2],
        "peak_pss": max(opening.peak_pss, reading.peak_pss),
        "memory": {"opening": phase(opening), "reading": phase(reading)},
    }


def watch_contender(name: str, workers: int) -> dict[str, Any]:
    """One epoch of a training-shaped loop through ``loadwise.monitor``; report and PNG."""
    dataset, batches = open_contender(name, workers)
    monitored = loadwise.monitor(batches)
    for _ in monitored:
        time.sleep(STEP_SECONDS)  # the model's step, as far as the input pipeline can tell
    stats = monitored.stats()
    monitored.close()
    title = f"{name}, {workers} workers, {STEP_SECONDS * 1e3:.0f} ms step"
    png = monitor_report.write_png(stats, DATA / f"monitor-{name}-{workers}w.png", title=title)
    return {
        "contender": name, "workers": workers, "png": str(png.relative_to(REPO)),
        "data_wait_fraction": stats.data_wait_fraction, "diagnosis": stats.diagnosis,
        "text": monitor_report.text(stats, title=f"{name}, {workers} workers"),
    }  # fmt: skip


def phase(memory: PeakMemory) -> dict[str, Any]:
    """A phase's peaks and who held what at its peak."""
    at_peak = [vars(p) for p in memory.peak.processes] if memory.peak else []
    return {**memory.summary(), "at_peak": at_peak}


# --- the orchestration: data, pack, one subprocess per contender, report --------------------


def ensure_tree() -> float:
    """Draw the PNG tree unless a complete one is there; returns the seconds spent."""
    found = sum(1 for _ in TREE.glob("*/*/*.png")) if TREE.is_dir() else 0
    if found == N_IMAGES:
        print(f"data: reusing {TREE.relative_to(REPO)} ({found:,} PNGs)")
        return 0.0
    if TREE.exists():
        print(f"data: {TREE.relative_to(REPO)} holds {found:,} of {N_IMAGES:,} PNGs, redrawing")
        shutil.rmtree(TREE)
    started = time.perf_counter()
    tree = make_omniglot_tree(
        TREE, alphabets=ALPHABETS, characters=CHARACTERS, drawings=DRAWINGS, size=SIZE,
        seed=SEED, workers=2,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    print(f"data: drew {tree.n_images:,} PNGs ({tree.font}) in {seconds:.1f} s")
    return seconds


def pack_tree() -> loadwise.PackReport:
    report = loadwise.pack(TREE, PACKED, workers=2, overwrite=True, progress=False)
    print(
        f"pack: {report.num_samples:,} samples into {report.num_shards} shards, "
        f"{report.num_bytes / MiB:,.1f} MiB, in {report.seconds:.1f} s"
    )
    return report


def measure(name: str, workers: int, watch: bool = False) -> dict[str, Any]:
    """Run one contender (timed, or ``watch``ed) in a fresh interpreter; read its JSON line."""
    print(f"  {name}, {workers} workers ...", end="", flush=True)
    command = [sys.executable, __file__, "--contender", name, "--workers", str(workers)]
    done = subprocess.run(
        command + (["--watch"] if watch else []), capture_output=True, text=True, check=False,
        cwd=REPO,
    )  # fmt: skip
    if done.returncode != 0:
        print(f" failed (exit {done.returncode}):\n{done.stderr}")
        raise SystemExit(1)
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f" {row['samples_per_s']:,.0f} samples/s" if not watch else f" {row['diagnosis']}")
    return row


def add_speedups(rows: list[dict[str, Any]]) -> float:
    """Each row's samples/s over the per-file baseline's best; returns that best."""
    best = max(r["samples_per_s"] for r in rows if r["contender"] == "per-file")
    for row in rows:
        row["speedup"] = row["samples_per_s"] / best
    return best


def table(rows: list[dict[str, Any]]) -> str:
    header = ("contender", "workers", "samples/s", "epoch 1", "epoch 2", "first batch (s)",
              "peak PSS (MiB)", "speedup")  # fmt: skip
    cells = [header] + [
        (
            r["contender"],
            str(r["workers"]),
            f"{r['samples_per_s']:,.0f}",
            *(f"{v:,.0f}" for v in r["epoch_samples_per_s"]),
            f"{r['first_batch_s']:.2f}",
            f"{r['peak_pss'] / MiB:,.1f}",
            f"{r['speedup']:.1f}x",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                        enumerate(zip(row, widths, strict=True))) for row in cells]  # fmt: skip
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def row_of(rows: list[dict[str, Any]], name: str, workers: int) -> dict[str, Any]:
    return next(r for r in rows if r["contender"] == name and r["workers"] == workers)


def speed_check(rows: list[dict[str, Any]], baseline: float) -> dict[str, Any]:
    eager = max((r for r in rows if r["contender"] == "eager"), key=lambda r: r["samples_per_s"])
    return {
        "target": f"eager >= {SPEED_TARGET:.0f}x per-file baseline at its best num_workers",
        "passed": eager["speedup"] >= SPEED_TARGET,
        "detail": (
            f"eager ({eager['workers']} workers) {eager['samples_per_s']:,.0f} samples/s vs "
            f"per-file best {baseline:,.0f} samples/s = {eager['speedup']:.1f}x"
        ),
    }


def memory_check(rows: list[dict[str, Any]], idle: dict[str, Any]) -> dict[str, Any]:
    """The absolute PSS target, with what the idle tree and the opening phase account for."""
    eager, idle_pss = row_of(rows, "eager", 2), idle["peak_pss"]
    opening, reading = (eager["memory"][k]["peak_pss"] for k in ("opening", "reading"))
    limit = PSS_FACTOR * DECODED_BYTES + PSS_SLACK
    figures = [
        f"peak {eager['peak_pss'] / MiB:,.1f} MiB vs limit {limit / MiB:,.1f} MiB "
        f"({PSS_FACTOR} x {DECODED_BYTES:,} B + 150 MB)",
        f"while opening {opening / MiB:,.1f} MiB, during the epochs {reading / MiB:,.1f} MiB; "
        f"the idle tree (no data) {idle_pss / MiB:,.1f} MiB",
        f"above the idle tree: epochs {(reading - idle_pss) / MiB:,.1f} MiB = "
        f"{(reading - idle_pss) / DECODED_BYTES:.2f}x decoded, opening "
        f"{(opening - idle_pss) / MiB:,.1f} MiB = {(opening - idle_pss) / DECODED_BYTES:.2f}x",
    ]
    passed = eager["peak_pss"] <= limit
    if not passed:
        figures.append("why: " + "; ".join(_memory_reasons(opening, reading, idle_pss)))
    target = f"eager with 2 workers: total PSS <= {PSS_FACTOR} x decoded bytes + 150 MB"
    return {"target": target, "passed": passed, "detail": "\n      ".join(figures)}


def _memory_reasons(opening: int, reading: int, idle_pss: int) -> list[str]:
    """Which part of the tree's PSS goes over budget, in words."""
    reasons = []
    if idle_pss > PSS_SLACK:
        reasons.append(
            f"the interpreter's own footprint (python + torch + loadwise in main and 2 workers, "
            f"{idle_pss / MiB:,.0f} MiB) is over the {PSS_SLACK / MiB:,.0f} MiB allowance"
        )
    data, budget = reading - idle_pss, PSS_FACTOR * DECODED_BYTES
    within = "within" if data <= budget else "over"
    reasons.append(f"the data during the epochs is {within} {PSS_FACTOR}x decoded")
    if opening > reading + 16 * MiB:
        reasons.append(
            f"opening peaks {(opening - reading) / MiB:,.0f} MiB higher: eager maps each shard "
            f"file (page cache) while copying it into shared memory"
        )
    return reasons


def peak_breakdown(memory: dict[str, Any]) -> str:
    """Who held what at a phase's peak, and what summed RSS would have claimed instead."""
    parts = [
        f"{p['role']} {p['pss'] / MiB:,.0f} (anon {(p['pss_anon'] or 0) / MiB:,.0f}, "
        f"file {(p['pss_file'] or 0) / MiB:,.0f}, shmem {(p['pss_shmem'] or 0) / MiB:,.0f})"
        for p in memory["at_peak"]
    ]
    rss = sum(p["rss"] for p in memory["at_peak"]) / MiB
    return f"{'; '.join(parts)}; summed RSS would say {rss:,.0f}"


def report(rows: list[dict[str, Any]], idle: list[dict[str, Any]], checks: list[Any]) -> None:
    print(
        f"\n{N_IMAGES:,} images of 1x{SIZE}x{SIZE} uint8, decoded {DECODED_BYTES:,} bytes "
        f"({DECODED_BYTES / MiB:,.1f} MiB); batch {BATCH}, {EPOCHS} epochs, shuffled, seed "
        f"{SEED}\nepoch 1/2: samples/s of each epoch; first batch: from opening the data to "
        f"the first batch in hand (eager includes loading into RAM)\npeak PSS: main + workers, "
        f"shared pages counted once, highest of opening and reading (lazy's includes the shard "
        f"pages it maps from the page cache)\n"
    )
    print(table(rows))
    print("\nidle tree (python + torch + loadwise imported, no data), peak PSS:")
    for r in idle:
        print(f"  {r['workers']} workers: {r['peak_pss'] / MiB:,.1f} MiB")
    eager = row_of(rows, "eager", 2)["memory"]
    print("eager, 2 workers, PSS MiB at the peak")
    print(f"  of opening: {peak_breakdown(eager['opening'])}")
    print(f"  of the epochs: {peak_breakdown(eager['reading'])}")
    print()
    for check in checks:
        verdict = "PASS" if check["passed"] else "FAIL"
        print(f"{verdict}  {check['target']}\n      {check['detail']}")


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "loadwise": loadwise.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def run_all() -> None:
    started = time.perf_counter()
    draw_seconds = ensure_tree()
    packed = pack_tree()
    print("reading (each in a fresh subprocess):")
    idle = [measure("idle", w) for w in WORKERS]
    rows = [measure(name, w) for name, w in CONTENDERS]
    baseline = add_speedups(rows)
    checks = [speed_check(rows, baseline), memory_check(rows, row_of(idle, "idle", 2))]
    report(rows, idle, checks)
    print("\nwatching a training-shaped loop with loadwise.monitor (each in a fresh subprocess):")
    watched = [measure(name, w, watch=True) for name, w in WATCHED]
    for w in watched:
        print(f"\n{w['text']}\nplot: {w['png']}")
    total = time.perf_counter() - started
    results = {
        "machine": machine(),
        "dataset": {"images": N_IMAGES, "decoded_bytes": DECODED_BYTES, "drawn_in": draw_seconds},
        "pack": {"seconds": packed.seconds, "bytes": packed.num_bytes, "shards": packed.num_shards},
        "batch_size": BATCH, "epochs": EPOCHS, "seed": SEED,
        "idle": idle, "contenders": rows, "checks": checks, "total_seconds": total,
        "watched": [{k: v for k, v in w.items() if k != "text"} for w in watched],
    }  # fmt: skip
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {RESULTS.relative_to(REPO)}; total {total:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contender", choices=("idle", "per-file", "eager", "lazy"))
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--watch", action="store_true", help="the monitored loop, not timing")
    args = parser.parse_args()
    if args.contender is None:
        run_all()
    elif args.watch:
        print(json.dumps(watch_contender(args.contender, args.workers)))
    else:
        print(json.dumps(run_contender(args.contender, args.workers)))


if __name__ == "__main__":
    main()
