"""Beyond one machine: pack to S3-compatible storage, train on 2 ranks reading it through a
small shared cache, kill the run mid-epoch, resume on 3 ranks.

    .venv/bin/python examples/distributed.py [--endpoint http://host:port --bucket NAME]

Without ``--endpoint`` a local S3 server (moto's, ``pip install 'moto[server]'``) is started
on 127.0.0.1 for the demo. Each run is ``torchrun --nproc_per_node=N`` of this file's
``train`` part over gloo (CPU): every step gathers every rank's loader state
(``loadwise.all_states``) and rank 0 checkpoints them; the first run is killed after step 5,
the second resumes on 3 ranks and finishes the epoch. At the end the example checks that
every sample of the epoch was trained on, and prints how many shards each run downloaded.
Credentials and the endpoint reach fsspec through ``storage_options`` only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np


def options(endpoint: str) -> dict:
    """fsspec's S3 options: the endpoint and credentials (a local demo server's)."""
    return {"key": "demo", "secret": "demo", "endpoint_url": endpoint,
            "client_kwargs": {"region_name": "us-east-1"}}  # fmt: skip


def train(args: argparse.Namespace) -> int:
    """One rank (run by torchrun): train over the remote dataset, checkpointing each step."""
    import torch
    import torch.distributed as dist

    import loadwise

    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    rank = dist.get_rank()
    data = loadwise.open(args.url, "auto", cache_dir=args.cache, cache_limit=args.cache_limit,
                         storage_options=options(args.endpoint))  # fmt: skip
    loader = loadwise.loader(data, 32, seed=0)
    model = torch.nn.Linear(28 * 28, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    checkpoint, step = Path(args.work) / "checkpoint.pt", 0
    if checkpoint.exists():
        saved = torch.load(checkpoint)
        model.load_state_dict(saved["model"])
        loader.load_state_dict(saved["loader"])  # every old rank's state: any world size
        step = saved["step"]
    log = (Path(args.work) / f"seen-{args.tag}-{rank}.jsonl").open("a")
    for batch in loader:
        step += 1
        x = batch["image"].float().flatten(1) / 255
        loss = torch.nn.functional.cross_entropy(model(x), batch["label"])
        opt.zero_grad()
        loss.backward()
        for p in model.parameters():  # DDP's gradient average, by hand
            assert p.grad is not None
            dist.all_reduce(p.grad)
            p.grad.div_(dist.get_world_size())
        opt.step()
        states = loadwise.all_states(loader)
        log.write(json.dumps([step, batch["index"].tolist()]) + "\n")
        log.flush()
        if rank == 0:
            torch.save({"model": model.state_dict(), "loader": states, "step": step},
                       checkpoint.with_suffix(".tmp"))  # fmt: skip
            os.replace(checkpoint.with_suffix(".tmp"), checkpoint)
        dist.barrier()
        if args.kill_at == step and rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # a preempted node
    downloads = getattr(data.store, "downloads", 0)  # a RemoteStore's count
    print(f"rank {rank}: {downloads} shards downloaded, loss {loss.item():.3f}")
    dist.destroy_process_group()
    return 0


def torchrun(nproc: int, common: list[str], *extra: str) -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={port}",
               "--max_restarts=0", __file__, "train", *common, *extra]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, env=env, stderr=subprocess.DEVNULL).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="an S3-compatible endpoint (default: start one)")
    parser.add_argument("--bucket", default="loadwise-demo")
    args = parser.parse_args()
    import loadwise

    server = None
    if args.endpoint is None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        args.endpoint = f"http://{host}:{port}"
        import boto3

        boto3.client("s3", endpoint_url=args.endpoint, region_name="us-east-1",
                     aws_access_key_id="demo", aws_secret_access_key="demo",
                     ).create_bucket(Bucket=args.bucket)  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="loadwise-distributed-"))
    url = f"s3://{args.bucket}/digits"
    try:
        rng = np.random.default_rng(0)
        n = 3_000
        report = loadwise.pack(
            {"image": rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8),
             "label": rng.integers(0, 10, n)},
            url, shard_bytes=256 * 1024, overwrite=True, progress=False,
            storage_options=options(args.endpoint),
        )  # fmt: skip
        print(f"packed {report.num_samples} samples in {report.num_shards} shards to {url}")
        limit = report.num_bytes // 3  # a cache of a third of the dataset, shared by the ranks
        common = ["--url", url, "--endpoint", args.endpoint, "--work", str(work),
                  "--cache", str(work / "cache"), "--cache-limit", str(limit)]  # fmt: skip
        code = torchrun(2, common, "--tag", "a", "--kill-at", "5")
        print(f"2 ranks: killed after step 5 (torchrun exit {code})")
        code = torchrun(3, common, "--tag", "b")
        print(f"3 ranks: resumed and finished the epoch (torchrun exit {code})")
        seen: Counter[int] = Counter()
        for tag, upto in (("a", 5), ("b", None)):
            for log in work.glob(f"seen-{tag}-*.jsonl"):
                for line in log.read_text().splitlines():
                    step, indices = json.loads(line)
                    if upto is None or step <= upto:
                        seen.update(indices)
        extra = sum(seen.values()) - n
        print(f"epoch: {len(seen)}/{n} samples trained on, {extra} repeated (pads for equal "
              f"shares on 3 ranks)")  # fmt: skip
        return 0 if len(seen) == n and code == 0 else 1
    finally:
        if server is not None:
            server.stop()


def _train_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    for name in ("--url", "--endpoint", "--work", "--cache", "--tag"):
        parser.add_argument(name, required=True)
    parser.add_argument("--cache-limit", type=int, required=True)
    parser.add_argument("--kill-at", type=int, default=-1)
    return parser.parse_args(argv)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "train":
        sys.exit(train(_train_args(sys.argv[2:])))
    sys.exit(main())
