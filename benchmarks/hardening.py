"""What issue 18's checks cost per batch: ``get_batch`` of this tree vs an older one, interleaved.

    .venv/bin/python -m benchmarks.hardening BASE_SRC [--rounds 9] [--seconds 0.25]

``BASE_SRC`` is the ``src`` folder of the code to compare with (e.g. ``git archive <commit>
src | tar -x -C /tmp/base``). Two long-lived processes run the same script, one importing
loadwise from ``BASE_SRC`` and one from this tree; each packs the same seeded data (12,000
samples: a 1x105x105 uint8 image, an int64 label and a short string) into its own temporary
folder, opens it in every mode and, when told, runs ``get_batch`` on the same seeded batches
of 64 for a quarter second, after a whole epoch has opened every shard and checked every
block (the steady state: what every later batch costs). Rounds alternate which side goes
first (ABBA), so the VM's drift (up to 2x within minutes here) favours neither; the figure
is the median of the per-round ratios this tree / base (1.0 = no change), in batches per
CPU second of the side's process (what the code costs; little moved by other load) and
per wall second. Two workloads:
the fixed fields alone (``image``, ``label``: the hot path of every mode) and all three
(the string goes through the variable path). Prints a table and the load average.

Torch runs on one thread per side by default (``--threads``): on a VM whose two cores are
shared with other work, torch's OpenMP threads wait for each other at every gather's barrier
while one of them is descheduled, and a batch then takes 10-100x its time (eager fell to 65
batches/s in such a run, rounds 0.05-14x apart); the checks measured here are Python work
per batch, which the thread count does not change. On a quiet machine ``--threads 2``
measures the default path too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

MODES = ("eager", "lazy", "cached", "streaming")
WORKLOADS = {"fixed": ("image", "label"), "all": ("image", "label", "name")}
N, SIDE, BATCH = 12_000, 105, 64

WORKER = r"""
import json, sys, tempfile, time
from pathlib import Path
import numpy as np
import loadwise
from loadwise.sampling.order import batches, epoch_order

N, SIDE, BATCH = {N}, {SIDE}, {BATCH}
rng = np.random.default_rng(0)
columns = {{
    "image": rng.integers(0, 256, size=(N, 1, SIDE, SIDE), dtype=np.uint8),
    "label": np.arange(N, dtype=np.int64) % 964,
    "name": [f"character{{i % 964:04d}}/{{i:06d}}.png" for i in range(N)],
}}
folder = Path(tempfile.mkdtemp(prefix="lw-hardening-")) / "d"
loadwise.pack(columns, folder, progress=False)
order = [b for e in range(4) for b in batches(epoch_order(N, 0, e), BATCH)]
open_sets = {{}}
def dataset(mode, fields):
    key = (mode, fields)
    if key not in open_sets:
        open_sets[key] = loadwise.open(folder, mode, fields=list(fields))
        for b in order[: N // BATCH + 1]:  # a whole epoch: every shard open, every block checked
            open_sets[key].get_batch(b)
    return open_sets[key]
print("ready", flush=True)
for line in sys.stdin:
    mode, fields, seconds = json.loads(line)
    data, count, i = dataset(mode, tuple(fields)), 0, 0
    started, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        for _ in range(16):
            data.get_batch(order[i % len(order)])
            i += 1
        count += 16
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps([count / wall, count / cpu]), flush=True)
"""


class Side:
    """One long-lived process running ``WORKER`` with loadwise from ``src``."""

    def __init__(self, src: Path, threads: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS=str(threads))
        code = WORKER.format(N=N, SIDE=SIDE, BATCH=BATCH)
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def rate(self, mode: str, fields: tuple[str, ...], seconds: float) -> list[float]:
        """Batches of ``get_batch`` per second and per CPU second, for ``seconds``."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([mode, list(fields), seconds]) + "\n")
        self.proc.stdin.flush()
        return [float(v) for v in json.loads(self.proc.stdout.readline())]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def ratios(base: Side, ours: Side, mode: str, fields: tuple[str, ...], rounds: int,
           seconds: float) -> dict[str, list[float]]:  # fmt: skip
    """Per round: rates of both sides and ours / base (per wall and per CPU second), after a
    round that warms both; ABBA order."""
    base.rate(mode, fields, seconds), ours.rate(mode, fields, seconds)
    out: dict[str, list[float]] = {k: [] for k in ("base", "ours", "wall", "cpu")}
    for i in range(rounds):
        if i % 2:
            b, a = ours.rate(mode, fields, seconds), base.rate(mode, fields, seconds)
        else:
            a, b = base.rate(mode, fields, seconds), ours.rate(mode, fields, seconds)
        out["base"].append(a[0])
        out["ours"].append(b[0])
        out["wall"].append(b[0] / a[0])
        out["cpu"].append(b[1] / a[1])
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_src", type=Path, help="the src folder of the code to compare with")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=0.25)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per side (default 1: see above)")  # fmt: skip
    args = parser.parse_args()
    ours_src = Path(__file__).resolve().parents[1] / "src"
    load_before = os.getloadavg()
    base, ours = Side(args.base_src.resolve(), args.threads), Side(ours_src, args.threads)
    results: dict[str, Any] = {}
    try:
        for workload, fields in WORKLOADS.items():
            for mode in MODES:
                results[f"{mode} {workload}"] = ratios(
                    base, ours, mode, fields, args.rounds, args.seconds
                )
    finally:
        base.close()
        ours.close()
    load_after = os.getloadavg()
    print(f"get_batch, batches of {BATCH}: this tree / base, median of {args.rounds} rounds "
          f"(ABBA, {args.seconds} s each, {args.threads} torch thread(s) per side)")  # fmt: skip
    print(f"{'mode fields':<16} {'per CPU s':>9} {'(rounds)':>13} {'per wall s':>10} "
          f"{'(rounds)':>13} {'base/s':>7} {'ours/s':>7}")  # fmt: skip
    for name, r in results.items():
        cpu, wall = r["cpu"], r["wall"]
        base_rate, our_rate = statistics.median(r["base"]), statistics.median(r["ours"])
        print(f"{name:<16} {statistics.median(cpu):>9.3f} {min(cpu):>6.2f}-{max(cpu):<6.2f} "
              f"{statistics.median(wall):>10.3f} {min(wall):>6.2f}-{max(wall):<6.2f} "
              f"{base_rate:>7.0f} {our_rate:>7.0f}")  # fmt: skip
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
