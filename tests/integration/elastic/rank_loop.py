"""One rank of an elastic training loop, run by ``torchrun`` (or as a plain process with the
environment torchrun sets), for the elastic-resume and dead-rank tests.

Each step: a batch, ``all_states`` (every rank's loader state, over gloo), and rank 0
writes the checkpoint ``{"states", "step"}`` atomically; every rank appends
``[step, indices]`` of the batch to its log (``<out>/seen-<run>-<rank>.jsonl``). With
``--kill-at K`` rank 1 kills itself (SIGKILL) right after step K's checkpoint, as a
preempted node would; with ``--die-at K`` rank 1 exits before step K's gather and rank 0
reports what ``all_states`` raised (exit 3).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

import loadwise
from loadwise.loading.elastic import RankError, all_states


def main() -> int:
    args = _parse()
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    rank = dist.get_rank()
    data = loadwise.open(args.data, "lazy")
    loader = loadwise.loader(data, args.batch_size, seed=args.seed)
    out = Path(args.out)
    checkpoint = out / "checkpoint.pt"
    step = 0
    if checkpoint.exists():
        saved = torch.load(checkpoint)
        loader.load_state_dict(saved["states"])  # every old rank's state: any new world
        step = saved["step"]
    log = (out / f"seen-{args.tag}-{rank}.jsonl").open("a")
    try:
        while loader.next_epoch < args.epochs:
            for batch in loader:
                step += 1
                log.write(json.dumps([step, loader.epoch, batch["index"].tolist()]) + "\n")
                log.flush()
                if rank == 1 and step == args.die_at:
                    os._exit(1)  # dies before the gather: the others must hear of it
                states = all_states(loader, timeout=args.timeout)
                if rank == 0:
                    torch.save({"states": states, "step": step}, out / "checkpoint.tmp")
                    os.replace(out / "checkpoint.tmp", checkpoint)
                dist.barrier()  # the checkpoint is written before anyone goes on
                if rank == 1 and step == args.kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
    except RankError as exc:
        sys.stderr.write(f"RankError after {time.monotonic() - STARTED:.1f} s: {exc}\n")
        sys.stderr.flush()
        os._exit(3)  # the process group cannot be torn down cleanly with a peer gone
    dist.destroy_process_group()
    return 0


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tag", default="a")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--kill-at", type=int, default=-1)
    parser.add_argument("--die-at", type=int, default=-1)
    parser.add_argument("--timeout", type=float, default=30.0)
    return parser.parse_args()


STARTED = time.monotonic()

if __name__ == "__main__":
    sys.exit(main())
