"""Limit vs loadwise epochs alternated in one process: ratios that the VM's drift cancels out.

python -m benchmarks.interleaved FOLDER [--rounds 9]

Separate processes minutes apart see this VM's speed change up to 2x, so a ratio of their
rates measures the drift as much as the code. Here a round runs a quarter second of whole
epochs of the limit, then as much of loadwise (the same seeded batches; which goes first
alternates), and the figure is the median of the per-round ratios. Alternating single batches
instead measured loadwise ~15% lower: two code paths taking turns every 100 us evict each
other's caches, which costs the longer path more. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks.consume import read_every_page
from benchmarks.contenders import loadwise_decoded, memmap_limit, numpy_limit

#: (name, limit builder, loadwise builder): the decoded targets that compare with a limit.
PAIRS = (
    ("eager / numpy limit", numpy_limit, loadwise_decoded("eager")),
    ("lazy / memmap limit", memmap_limit, loadwise_decoded("lazy")),
)


def rate(epochs_of: Callable[[], Iterable[Any]], seconds: float) -> float:
    """Samples per second over whole epochs, as many as fill ``seconds``."""
    started, samples = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        for batch in epochs_of():
            read_every_page(batch)
            samples += len(batch["label"])
    return samples / (time.perf_counter() - started)


def ratios(limit: Callable[[], Iterable[Any]], ours: Callable[[], Iterable[Any]],
           rounds: int, seconds: float = 0.25) -> list[float]:  # fmt: skip
    """loadwise's rate over the limit's, one figure per round, after a round that warms
    both; the side that goes first alternates (ABBA), so a drift favours neither."""
    rate(limit, seconds), rate(ours, seconds)
    out = []
    for i in range(rounds):
        if i % 2:
            b, a = rate(ours, seconds), rate(limit, seconds)
        else:
            a, b = rate(limit, seconds), rate(ours, seconds)
        out.append(b / a)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    record = json.loads((args.folder / "built.json").read_text())
    results = {}
    for name, limit_of, ours_of in PAIRS:
        limit, ours = limit_of(args.folder, record, 0), ours_of(args.folder, record, 0)
        measured = ratios(limit.epochs_of, ours.epochs_of, args.rounds)
        results[name] = {"median": statistics.median(measured), "rounds": measured,
                         "num_workers": ours.extra.get("num_workers")}  # fmt: skip
    sys.stdout.write(json.dumps(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
