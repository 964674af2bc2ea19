"""Issue 19's memory row, interleaved: ``python -m benchmarks.memory19 [--base DIR]``.

PSS over the idle tree (main + 2 idle DataLoader workers, ``context.idle_memory``) of
loadwise's JPEG w2 contender against the best of its peers (per-file PIL, HF datasets,
WebDataset, w2), each side in a fresh interpreter with the data evicted from the page cache
first (as ``run_one.py``), the sides alternating round by round; the median of per-round
ratios. A peer whose package is missing is skipped, and said so. With ``--base DIR`` (e.g.
``git archive <commit> | tar -x -C DIR``) loadwise from that checkout (its ``src`` and
``benchmarks``) is measured in the same rounds. The last round's peaks are broken down per
process (PSS, USS, RSS of main and each worker).
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

OURS = "JPEG loadwise lazy w2"
PEERS = ("JPEG per-file PIL w2", "JPEG HF datasets w2", "JPEG WebDataset w2")
HERE = Path(__file__).resolve().parents[1]
MB = 2**20


def child(data: Path, name: str, epochs: int) -> dict[str, Any]:
    """Two epochs of contender ``name`` here; the peak snapshot's processes (bytes)."""
    from benchmarks.consume import read_every_page
    from benchmarks.contenders import CONTENDERS
    from benchmarks.peers import PEERS as PEER_TABLE
    from benchmarks.run_one import evict
    from loadwise.monitoring.memory import PeakMemory

    record = json.loads((data / "built.json").read_text())
    _, build, workers = {**CONTENDERS, **PEER_TABLE}[name]
    evict(data)
    made = build(data, record, workers)
    with PeakMemory(interval=0.02, max_cpu=0.2) as peak:
        for _ in range(epochs):
            for batch in made.epochs_of():
                read_every_page(batch)
    assert peak.peak is not None
    procs = [
        {
            "role": p.role,
            "pss": p.pss,
            "uss": p.uss,
            "rss": p.rss,
            "anon": p.pss_anon,
            "file": p.pss_file,
            "shmem": p.pss_shmem,
        }
        for p in peak.peak.processes
    ]
    return {"pss": peak.peak.total_pss, "processes": procs}


def measure(data: Path, name: str, tree: Path, epochs: int) -> dict[str, Any]:
    """``child`` in a fresh interpreter with loadwise and benchmarks from ``tree``."""
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{tree / 'src'}"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--data", str(data),
           "--child", name, "--epochs", str(epochs)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/", check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{name} from {tree} failed:\n{out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def idle_tree(tree: Path) -> int:
    """PSS of the idle tree (main + 2 idle workers, fork) measured with ``tree``'s imports."""
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{tree / 'src'}"}
    from benchmarks.context import IDLE

    cmd = [sys.executable, "-c", IDLE, "2", "fork"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/", check=True)
    return int(json.loads(out.stdout.strip().splitlines()[-1])["pss"])


def rounds(data: Path, base: Path | None, count: int, epochs: int) -> dict[str, Any]:
    """Each round: the idle tree, ours (and base's), every peer, in alternating order."""
    sides = [("ours", OURS, HERE)] + ([("base", OURS, base)] if base else [])
    sides += [(peer, peer, HERE) for peer in PEERS if _installed(peer)]
    found: dict[str, list[Any]] = {"idle": [], **{label: [] for label, _, _ in sides}}
    for r in range(count):
        found["idle"].append(idle_tree(HERE))
        for label, name, tree in sides[:: 1 if r % 2 == 0 else -1]:
            found[label].append(measure(data, name, tree, epochs))
            over = (found[label][-1]["pss"] - found["idle"][-1]) / MB
            print(f"round {r + 1} {label}: +{over:,.0f} MiB over the idle tree", flush=True)
    return found


def _installed(peer: str) -> bool:
    """Whether a peer's package is here (WebDataset is only in the ``bench`` extra)."""
    import importlib.util

    needs = {"JPEG HF datasets w2": "datasets", "JPEG WebDataset w2": "webdataset"}.get(peer)
    if needs is None or importlib.util.find_spec(needs) is not None:
        return True
    print(f"skipped {peer}: `{needs}` is not installed (pip install -e '.[bench]')", flush=True)
    return False


def summary(found: dict[str, list[Any]], base: bool) -> dict[str, Any]:
    """Median per-round ratios: ours / best peer (and base / best peer, ours / base)."""
    over = {
        label: [run["pss"] - idle for run, idle in zip(runs, found["idle"], strict=True)]
        for label, runs in found.items()
        if label != "idle"
    }
    peers = [p for p in PEERS if p in over]
    best = [min(over[p][r] for p in peers) for r in range(len(found["idle"]))]
    out: dict[str, Any] = {"over_mib": {k: [v / MB for v in vs] for k, vs in over.items()}}
    out["ours / best peer"] = statistics.median(
        o / b for o, b in zip(over["ours"], best, strict=True)
    )
    if base:
        out["base / best peer"] = statistics.median(
            o / b for o, b in zip(over["base"], best, strict=True)
        )
        out["ours / base"] = statistics.median(
            o / b for o, b in zip(over["ours"], over["base"], strict=True)
        )
    return out


def _processes(found: dict[str, list[Any]], label: str) -> str:
    """The last round's peak of ``label`` per process, MiB."""
    procs = found[label][-1]["processes"]
    return "; ".join(
        f"{p['role']} PSS {p['pss'] / MB:,.0f} USS {p['uss'] / MB:,.0f} RSS {p['rss'] / MB:,.0f}"
        for p in procs
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory19", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("/tmp/loadwise-bench-full"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--base", type=Path, help="a checkout of the version to compare with")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.stdout.write(json.dumps(child(args.data, args.child, args.epochs)) + "\n")
        return 0
    found = rounds(args.data, args.base, args.rounds, args.epochs)
    out = summary(found, args.base is not None)
    for key in ("ours / best peer", "base / best peer", "ours / base"):
        if key in out:
            print(f"JPEG w2 memory over the idle tree, {key}: median {out[key]:.2f}x", flush=True)
    for label in ("ours", "base") if args.base else ("ours",):
        print(f"{label} peak by process (last round, MiB): {_processes(found, label)}", flush=True)
    sys.stdout.write(json.dumps({**out, "runs": found}) + "\n")
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # run by path in a child: the tree comes from PYTHONPATH
        sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
    sys.exit(main())
