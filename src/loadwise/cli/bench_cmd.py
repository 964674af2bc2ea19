"""``loadwise bench PATH``: samples/s, first batch and memory of each mode and worker count."""

from __future__ import annotations

import argparse
import json

from loadwise.bench.modes import bench_modes
from loadwise.monitoring.measure import Measurement
from loadwise.render import human_bytes, table


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
