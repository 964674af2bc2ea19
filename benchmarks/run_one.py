"""Measure one contender in a fresh process, so its memory is its own; prints JSON.

python -m benchmarks.run_one FOLDER NAME [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from pathlib import Path

from benchmarks.contenders import CONTENDERS, SPAWN_SUFFIX
from loadwise.monitoring.measure import measure


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("name", choices=sorted(CONTENDERS))
    parser.add_argument("--epochs", type=int, help="default 3 for loadwise (memory growth), else 2")
    parser.add_argument("--steady-seconds", type=float, default=1.0)
    args = parser.parse_args()
    if args.name.endswith(SPAWN_SUFFIX):
        multiprocessing.set_start_method("spawn", force=True)
    record = json.loads((args.folder / "built.json").read_text())
    workload, build, workers = CONTENDERS[args.name]
    contender = build(args.folder, record, workers)
    epochs = args.epochs or (3 if "loadwise" in args.name else 2)
    result = measure(args.name, contender.epochs_of, epochs=epochs,
                     prepare_seconds=contender.prepare_seconds,
                     disk_bytes=contender.disk_bytes,
                     steady_seconds=args.steady_seconds)  # fmt: skip
    out = result.to_dict()
    out["extra"] = {**contender.extra, "workload": workload, "workers": workers}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
