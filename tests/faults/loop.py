"""A training loop that checkpoints after every batch, for the kill-and-resume trials.

Run as a separate process (one per rank): it resumes from ``--checkpoint`` if present,
saves ``{"loader": state_dict, "consumed": [...]}`` atomically after each batch and, when
all epochs are done, writes the consumed indices to ``--done``. Prints ``step N`` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

import loadwise
from loadwise.errors import WorkerError


def main() -> int:
    args = _parse()
    if args.world > 1:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=args.rank,
            world_size=args.world,
        )  # fmt: skip
    data = loadwise.open(args.data, args.mode)
    loader = loadwise.loader(
        data, args.batch_size, seed=args.seed, shuffle=args.shuffle, num_workers=args.workers
    )
    consumed: list[int] = []
    checkpoint = Path(args.checkpoint)
    if checkpoint.exists():
        saved = json.loads(checkpoint.read_text())
        loader.load_state_dict(saved["loader"])
        consumed = saved["consumed"]
    step = 0
    try:
        while loader.next_epoch < args.epochs:
            for batch in loader:
                consumed.extend(batch["index"].tolist())
                if args.world > 1:
                    dist.all_reduce(torch.ones(1))  # ranks step together, as under DDP
                _save(checkpoint, {"loader": loader.state_dict(), "consumed": consumed})
                step += 1
                sys.stdout.write(f"step {step}\n")
                sys.stdout.flush()
                time.sleep(args.step_seconds)
    except WorkerError as exc:
        sys.stderr.write(f"WorkerError: {exc}\n")
        return 3
    Path(args.done).write_text(json.dumps(consumed))
    if args.world > 1:
        dist.destroy_process_group()
    return 0


def _save(path: Path, state: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--mode", default="lazy")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--shuffle", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rank", type=int, default=0)
    p.add_argument("--world", type=int, default=1)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--step-seconds", type=float, default=0.01)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--done", required=True)
    args = p.parse_args()
    args.shuffle = bool(args.shuffle)
    return args


if __name__ == "__main__":
    sys.exit(main())
