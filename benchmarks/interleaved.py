"""Limit vs loadwise epochs alternated in one process: ratios that the VM's drift cancels out.

python -m benchmarks.interleaved FOLDER [--rounds 9]

Separate processes minutes apart see this VM's speed change up to 2x, so a ratio of their
rates measures the drift as much as the code. Here a round iterates epochs of the limit and
of loadwise together, one batch of each in turn (the same seeded batches), timing each side's
batches; the figure is the median of the per-round ratios. Prints one JSON line.
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

from benchmarks.contenders import loadwise_decoded, memmap_limit, numpy_limit

#: (name, limit builder, loadwise builder): the decoded targets that compare with a limit.
PAIRS = (
    ("eager / numpy limit", numpy_limit, loadwise_decoded("eager")),
    ("lazy / memmap limit", memmap_limit, loadwise_decoded("lazy")),
)


def round_ratio(limit: Callable[[], Iterable[Any]], ours: Callable[[], Iterable[Any]],
                seconds: float) -> float:  # fmt: skip
    """loadwise's rate over the limit's over whole epochs of both, batch by batch in turn
    (so both see the same moment of the machine), for at least ``seconds``."""
    spent = {"limit": 0.0, "ours": 0.0}
    samples = dict.fromkeys(spent, 0)
    while sum(spent.values()) < seconds:
        runs = {"limit": iter(limit()), "ours": iter(ours())}
        while runs:
            for side, batches in list(runs.items()):
                started = time.perf_counter()
                batch = next(batches, None)
                spent[side] += time.perf_counter() - started
                if batch is None:
                    del runs[side]
                else:
                    samples[side] += len(batch["label"])
    return (samples["ours"] / spent["ours"]) / (samples["limit"] / spent["limit"])


def ratios(limit: Callable[[], Iterable[Any]], ours: Callable[[], Iterable[Any]],
           rounds: int, seconds: float = 0.5) -> list[float]:  # fmt: skip
    """One ratio per round, after a round that warms both."""
    round_ratio(limit, ours, seconds)
    return [round_ratio(limit, ours, seconds) for _ in range(rounds)]


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
