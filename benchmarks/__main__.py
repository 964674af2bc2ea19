"""Every contender, same run, same indices: ``python -m benchmarks [--quick]`` (``make bench``).

Builds the data once per size (see ``data.py``), measures each contender in its own process
(``run_one.py``, so memory figures are its own), then prints the table and the targets as
ratios and writes ``results.json``, ``results.md`` and ``results.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import context, report
from benchmarks.contenders import CONTENDERS, TUNE_ENV
from benchmarks.data import build
from benchmarks.peers import PEERS, extend


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data (under 3 minutes)")
    parser.add_argument("--data", type=Path, help="where data is built and kept")
    parser.add_argument("--out", type=Path, help="results folder (default DATA/results)")
    parser.add_argument("--only", nargs="*", help="run only contenders whose name has these")
    parser.add_argument("--no-large", action="store_true", help="full runs: skip the 4 GB part")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    data = args.data or Path(f"/tmp/loadwise-bench-{'quick' if args.quick else 'full'}")
    out = args.out or data / "results"
    print(f"data: {data} (built once, then reused)", flush=True)
    record = extend(data, build(data, args.quick))
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(data / "cache" / "tune", ignore_errors=True)  # tune this code, not the last
    env = {**os.environ, "LOADWISE_CACHE": str(data / "cache"),
           TUNE_ENV: "0.6" if args.quick else "2.0"}  # fmt: skip
    results: dict[str, Any] = {"record": record, "contenders": {}}
    results["context"] = {
        "memcpy_bytes_per_second": context.memcpy_bytes_per_second(),
        "jpeg_decode_rates": context.decode_rates(data),
        "jpeg_parallel_decode_rate": context.parallel_decode_rate(data, os.cpu_count() or 1),
        "pack_seconds": context.pack_seconds(data, rounds=2 if args.quick else 3),
        "idle": context.idle_memory(),
        "idle_w2_fork": context.idle_memory(2, "fork"),
        "idle_w2_spawn": context.idle_memory(2, "spawn"),
        "cores": os.cpu_count(),
    }
    for name in {**CONTENDERS, **PEERS}:
        if args.only and not any(part in name for part in args.only):
            continue
        print(f"  {name} ...", end="", flush=True)
        results["contenders"][name] = one(data, name, env)
        print(f" {results['contenders'][name].get('steady_rate', 0):,.0f} samples/s", flush=True)
    if not args.only:
        print("  interleaved limit vs loadwise epochs ...", flush=True)
        rounds = "5" if args.quick else "9"
        results["interleaved"] = _json_of(["benchmarks.interleaved", str(data), "--rounds", rounds],
                                          env)  # fmt: skip
    if not args.quick and not args.no_large and not args.only:
        print("  4 GB dataset: first batch, streaming memory ...", flush=True)
        results["large"] = _json_of(["benchmarks.large", str(data)], env)
    results["seconds"] = time.perf_counter() - started
    report.write(results, out)
    print(f"wrote {out}/results.json, results.md, results.png in {results['seconds']:.0f} s")
    return 0


def _json_of(module_and_args: list[str], env: dict[str, str]) -> Any:
    """The last line of ``python -m MODULE ARGS`` as JSON (it must succeed)."""
    done = subprocess.run([sys.executable, "-m", *module_and_args], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def one(data: Path, name: str, env: dict[str, str]) -> dict[str, Any]:
    """Measure one contender in a fresh interpreter; an error is recorded, not raised."""
    cmd = [sys.executable, "-m", "benchmarks.run_one", str(data), name]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"name": name, "error": done.stderr.strip().splitlines()[-1:] or ["no output"]}
    return json.loads(lines[-1])


if __name__ == "__main__":
    sys.exit(main())
