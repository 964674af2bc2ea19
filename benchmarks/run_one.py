"""Measure one contender in a fresh process, so its memory is its own; prints JSON.

python -m benchmarks.run_one FOLDER NAME [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from pathlib import Path

from benchmarks.consume import read_every_page
from benchmarks.contenders import CONTENDERS, SPAWN_SUFFIX
from benchmarks.peers import PEERS
from loadwise.monitoring.measure import measure


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("name", choices=sorted({**CONTENDERS, **PEERS}))
    parser.add_argument("--epochs", type=int, help="default 3 for loadwise (memory growth), else 2")
    parser.add_argument("--steady-seconds", type=float, default=1.0)
    args = parser.parse_args()
    if args.name.endswith(SPAWN_SUFFIX):
        multiprocessing.set_start_method("spawn", force=True)
    record = json.loads((args.folder / "built.json").read_text())
    workload, build, workers = {**CONTENDERS, **PEERS}[args.name]
    evicted = evict(args.folder)  # epoch 1 reads from disk, as a training run's first does
    contender = build(args.folder, record, workers)
    epochs = args.epochs or (3 if "loadwise" in args.name else 2)
    result = measure(args.name, contender.epochs_of, epochs=epochs,
                     prepare_seconds=contender.prepare_seconds,
                     disk_bytes=contender.disk_bytes,
                     steady_seconds=args.steady_seconds,
                     consume=read_every_page)  # fmt: skip
    out = result.to_dict()
    out["extra"] = {**contender.extra, "workload": workload, "workers": workers,
                    "evicted_files": evicted}  # fmt: skip
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


def evict(folder: Path) -> int:
    """Drop the benchmark data's pages from the page cache (``posix_fadvise(DONTNEED)`` per
    file: no root needed, and other processes' cached files stay); returns files evicted."""
    count = 0
    for path in folder.rglob("*"):
        if path.is_file() and "results" not in path.parts:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            finally:
                os.close(fd)
    return count


if __name__ == "__main__":
    sys.exit(main())
