"""``loadwise bench PATH``: samples/s, first batch and memory of each mode and worker count."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from loadwise.bench.modes import MODES, bench_modes
from loadwise.monitoring.measure import Measurement
from loadwise.render import human_bytes, table


def add_parser(commands: Any) -> None:
    p = commands.add_parser("bench", help="measure a packed dataset's loading speed",
                            description=__doc__)  # fmt: skip
    p.add_argument("path", help="a folder written by `loadwise pack`")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES, metavar="MODE",
                   help=f"modes to measure (default all: {', '.join(MODES)})")  # fmt: skip
    p.add_argument("--workers", nargs="+", type=int, default=[0, 2], metavar="N",
                   help="DataLoader worker counts (default 0 2)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seconds", type=float, help="cut each epoch after this many seconds")
    p.add_argument("--plot", type=Path, help="also draw samples/s as a PNG here")
    p.add_argument("--json", type=Path, help="also write every figure as JSON here")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    results = bench_modes(args.path, modes=args.modes, workers=args.workers,
                          batch_size=args.batch_size, epochs=args.epochs,
                          max_seconds=args.seconds)  # fmt: skip
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in results], indent=1))
        print(f"wrote {args.json}")
    if args.plot:
        from loadwise.bench.plot import draw_rates

        bars = [(r.name, r.steady_rate) for r in results]
        draw_rates({str(args.path): bars}, args.plot, title="loadwise bench: samples/s (log)")
        print(f"wrote {args.plot}")
    return 0


def render(results: list[Measurement]) -> str:
    header = ["mode", "workers", *[f"epoch {i + 1} /s" for i in range(len(results[0].rates))],
              "first batch", "open", "peak PSS", "private", "shared"]  # fmt: skip
    rows = [
        [r.extra["mode"], str(r.extra["workers"]), *[f"{x:,.0f}" for x in r.rates],
         f"{r.first_batch_seconds:.3f} s", f"{r.prepare_seconds:.2f} s", human_bytes(r.peak_pss),
         human_bytes(r.peak_private), human_bytes(r.peak_shared)]
        for r in results
    ]  # fmt: skip
    return table(header, rows)
