"""Issue 17's four targets in one run: object storage, the bounded cache, elastic resume, Ray.

    .venv/bin/python -m benchmarks.distributed [--quick] [--rounds 5] [--samples 30000]

1. Streaming an epoch from S3 (moto's standalone server on 127.0.0.1, started here in its
   own process) vs the same streaming from local disk: cold (a fresh cache each round:
   every shard fetched, verified and written while the epoch runs) against local disk's
   epoch 1 (the dataset's pages dropped from the page cache first, as ``run_one`` does, and
   checked with ``mincore``: the first epoch reads the disk) and against local disk with
   the page cache warm (a later epoch: stricter); and warm (the whole dataset already
   cached) against local disk with the page cache warm. Rounds
   interleave the sides (ABBA) and the figure is the median of per-round ratios of
   samples per second (target: cold >= 0.7x, warm >= 0.9x). Beside it: the server's own
   rate (every shard fetched once over presigned URLs by urllib3, 4 at a time, nothing
   else running: moto is a Python server on the same two cores); cold with the VM's cost
   of fresh memory taken out (``back_fresh_memory``: this VM's host backs free memory
   again on first touch, and a cold epoch puts the whole dataset into the page cache);
   and cold with read-ahead in a helper process (``FetchOptions(helper=True)``).
2. Disk: an epoch streamed with ``cache_limit`` = 1/4 of the dataset, two DataLoader workers;
   the cache's bytes sampled every 100 ms (target: never above limit + one shard).
3. Elastic: 20 trials, each an epoch on 1-3 ranks stopped at a random step (every rank's
   state saved), resumed on 1-3 ranks and run to the end, then the next epoch; ranks are
   real ``Loader``s told their rank and world as torch.distributed would (the multi-process
   torchrun proof is tests/integration/elastic). Counted: every sample of every epoch seen,
   and no sample repeated beyond the pads that equal shares need on the final world
   (``pad_ranks``, as in any epoch on that many ranks).
4. ``pack(engine="ray")`` on ``ray.init(num_cpus=2)`` vs the local engine (1 worker, and
   2 workers: the same two cores), interleaved: byte-identical shards and manifest, and
   seconds (Ray's start-up not counted; it is printed apart).

Prints a table and the load average (``uptime``); per-round figures go to ``--json``
(default: ``distributed.json`` in the temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

import loadwise
from benchmarks.run_one import evict
from loadwise.loading import DataLoaderConfig

BATCH = 256


def columns(n: int) -> dict[str, Any]:
    """``n`` samples of about 3.3 KB: a 1x56x56 uint8 image, a label, a short string."""
    rng = np.random.default_rng(0)
    return {
        "image": rng.integers(0, 256, (n, 1, 56, 56), dtype=np.uint8),
        "label": np.arange(n, dtype=np.int64) % 100,
        "name": [f"item-{i:07d}" for i in range(n)],
    }


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    """moto's standalone S3 server in its own process on 127.0.0.1 (as S3 is another
    machine: its Python does not share this process's GIL), and its endpoint."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    server.kill()
    raise RuntimeError("moto's server did not start within 60 s")


def raw_fetch_rate(url: str, options: dict[str, Any], samples: int) -> float:
    """The server's own rate: every shard fetched once, 4 at a time, over presigned URLs
    by urllib3 into one reused buffer per thread (the leanest Python client; nothing
    verified or written), as samples per second as the epochs count."""
    import concurrent.futures

    import fsspec
    import urllib3

    fs = fsspec.filesystem("s3", skip_instance_cache=True, **options)
    signed = [fs.sign(p, expiration=600) for p in fs.ls(url, detail=False) if p.endswith(".arrow")]
    pool, buffers = urllib3.PoolManager(maxsize=4), threading.local()

    def get(address: str) -> None:
        buffer = getattr(buffers, "view", None)
        if buffer is None:
            buffer = buffers.view = memoryview(bytearray(2**20))
        response = pool.request("GET", address, preload_content=False, decode_content=False)
        while response.readinto(buffer):
            pass
        response.release_conn()

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(4) as workers:
        list(workers.map(get, signed))
    return samples / (time.perf_counter() - started)


def back_fresh_memory(nbytes: int, folder: Path) -> None:
    """Write and delete ``2 * nbytes`` of file data, so the kernel's free lists hold pages
    the host has just backed. This VM hands free memory back to its host, which backs it
    again on first touch (0.4-0.6 GB/s, vs 4 GB/s for pages freed moments ago: NOTES.md,
    sessions 10-11); a cold epoch puts the whole dataset into the page cache, a local
    epoch reads what is there. Measuring a cold epoch after this takes that cost out."""
    path = folder / "back-fresh-memory"
    chunk = b"\0" * 2**20  # the cache's write size: folios of the same order
    with open(path, "wb") as f:
        for _ in range(2 * nbytes // len(chunk)):
            f.write(chunk)
    path.unlink()


def resident(folder: Path) -> float:
    """The fraction of the files' pages under ``folder`` in the page cache (``mincore``)."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    pages = held = 0
    for path in folder.rglob("*"):
        size = path.stat().st_size if path.is_file() else 0
        if size == 0:
            continue
        with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as m:
            count = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
            vector = (ctypes.c_ubyte * count)()
            address = ctypes.addressof(ctypes.c_char.from_buffer(m))
            if libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(size), vector) != 0:
                raise OSError(ctypes.get_errno(), f"mincore failed on {path}")
            pages, held = pages + count, held + sum(v & 1 for v in vector)
    return held / max(pages, 1)


def epoch_rate(data: Any, seed: int, workers: int = 0) -> float:
    """Samples per second over one shuffled epoch."""
    loader = loadwise.loader(data, BATCH, seed=seed, num_workers=workers)
    started, count = time.perf_counter(), 0
    for batch in loader:
        count += len(batch["index"])
    return count / (time.perf_counter() - started)


def remote(url: str, cache: Path, options: dict[str, Any], helper: bool = False) -> Any:
    """The dataset at ``url`` streamed through the cache in ``cache``."""
    from loadwise.access.streaming import StreamingDataset
    from loadwise.stores.remote import FetchOptions, RemoteStore

    store = RemoteStore(url, cache_dir=cache, storage_options=options,
                        fetch=FetchOptions(helper=helper))  # fmt: skip
    return StreamingDataset(store)


def streaming_targets(local: Path, url: str, options: dict[str, Any], rounds: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="lw-bench-cache-"))
    manifest = loadwise.open(local, "lazy").manifest
    samples = manifest.num_samples
    warm_cache = work / "warm"
    epoch_rate(remote(url, warm_cache, options), 0)
    sides = ["local", "local_epoch1", "cold", "warm", "raw", "cold_helper", "cold_backed"]
    ratios: dict[str, list[float]] = {s: [] for s in sides[1:]}
    ratios["cold_vs_server"], ratios["cold_vs_epoch1"], left = [], [], []
    for r in range(rounds):
        rates: dict[str, float] = {}
        for side in sides if r % 2 == 0 else sides[::-1]:
            if side == "local":
                rates[side] = epoch_rate(loadwise.open(local, "streaming"), r)
            elif side == "local_epoch1":
                evict(local)
                left.append(resident(local))
                rates[side] = epoch_rate(loadwise.open(local, "streaming"), r)
            elif side == "raw":
                rates[side] = raw_fetch_rate(url, options, samples)
            elif side == "warm":
                rates[side] = epoch_rate(remote(url, warm_cache, options), r)
            else:
                data = remote(url, work / f"{side}-{r}", options, side == "cold_helper")
                if side == "cold_backed":
                    back_fresh_memory(manifest.num_bytes, work)
                rates[side] = epoch_rate(data, r)
        for side in sides[1:]:
            ratios[side].append(rates[side] / rates["local"])
        ratios["cold_vs_server"].append(rates["cold"] / rates["raw"])
        ratios["cold_vs_epoch1"].append(rates["cold"] / rates["local_epoch1"])
        print(f"  round {r}: local {rates['local']:,.0f}/s  local epoch 1 "
              f"{rates['local_epoch1']:,.0f}/s ({left[-1]:.1%} of its pages left in the page "
              f"cache)  cold {rates['cold']:,.0f}/s  "
              f"cold, memory backed {rates['cold_backed']:,.0f}/s  warm {rates['warm']:,.0f}/s"
              f"  server alone {rates['raw']:,.0f}/s  cold, read-ahead in a helper "
              f"{rates['cold_helper']:,.0f}/s  (load {os.getloadavg()[0]:.1f})")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    result: dict[str, Any] = {k: statistics.median(v) for k, v in ratios.items()}
    result["rounds"], result["resident_at_epoch1"] = ratios, max(left)
    return result


def disk_target(url: str, options: dict[str, Any]) -> dict:
    cache = Path(tempfile.mkdtemp(prefix="lw-bench-quarter-"))
    probe = loadwise.open(url, "streaming", cache_dir=cache, storage_options=options)
    total = probe.manifest.num_bytes
    largest = max(s.num_bytes for s in probe.manifest.shards)
    limit = max(total // 4, largest)
    data = loadwise.open(url, "streaming", cache_dir=cache, cache_limit=limit,
                         storage_options=options)  # fmt: skip
    samples: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            samples.append(data.store.cache.usage().total)  # type: ignore[attr-defined]
            stop.wait(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        epoch_rate(data, 7, workers=2)
    finally:
        stop.set()
        watcher.join()
    shutil.rmtree(cache, ignore_errors=True)
    return {"dataset": total, "limit": limit, "largest_shard": largest, "peak": max(samples),
            "samples": len(samples), "ok": max(samples) <= limit + largest}  # fmt: skip


def _ranks(data: Any, world: int, batch: int) -> list[loadwise.Loader]:
    loaders = []
    for rank in range(world):
        one = loadwise.loader(data, config=DataLoaderConfig(batch_size=batch, generator_seed=3))
        one.rank, one.world = rank, world  # as torch.distributed would report
        one.sampler = one._epoch_sampler()
        one.dataloader = one._dataloader()
        loaders.append(one)
    return loaders


def elastic_target(local: Path, trials: int) -> dict:
    data = loadwise.open(local, "lazy", fields=["label"])
    n, rng, failures = len(data), random.Random(17), []
    for trial in range(trials):
        batch = rng.choice([16, 32, 64])
        before, after = rng.randint(1, 3), rng.randint(1, 3)
        loaders = _ranks(data, before, batch)
        stop = rng.randint(0, len(loaders[0]) - 1)
        seen: Counter[int] = Counter()
        iterators = [iter(loader) for loader in loaders]
        for _ in range(stop):
            for it in iterators:
                seen.update(next(it)["index"].tolist())
        states = [loader.state_dict() for loader in loaders]
        del iterators  # the run is killed here
        resumed = _ranks(data, after, batch)
        for loader in resumed:
            loader.load_state_dict(states)
        for loader in resumed:
            seen.update(i for b in loader for i in b["index"].tolist())
        rest = n - before * stop * batch  # what the resumed ranks shared (stop < last batch)
        ok0 = set(seen) == set(range(n)) and sum(seen.values()) - n == (-rest) % after
        nxt: Counter[int] = Counter()
        for loader in resumed:
            nxt.update(i for b in loader for i in b["index"].tolist())
        ok1 = set(nxt) == set(range(n)) and sum(nxt.values()) - n == (-n) % after
        if not (ok0 and ok1):
            failures.append({"trial": trial, "before": before, "after": after, "stop": stop})
    return {"trials": trials, "failures": failures, "ok": not failures}


def ray_target(source: dict[str, Any], rounds: int, shard_bytes: int) -> dict:
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    startup = time.perf_counter() - started
    work = Path(tempfile.mkdtemp(prefix="lw-bench-ray-"))
    times: dict[str, list[float]] = {"local": [], "local2": [], "ray": []}
    identical = True
    try:
        for r in range(rounds):
            order = ["local", "local2", "ray"] if r % 2 == 0 else ["ray", "local2", "local"]
            for side in order:
                dest = work / f"{side}-{r}"
                options: dict[str, Any] = {"engine": "ray"} if side == "ray" else {}
                if side == "local2":
                    options["workers"] = 2
                t = time.perf_counter()
                loadwise.pack(source, dest, shard_bytes=shard_bytes, progress=False, **options)
                times[side].append(time.perf_counter() - t)
            a = {p.name: p.read_bytes() for p in (work / f"local-{r}").iterdir()}
            b = {p.name: p.read_bytes() for p in (work / f"ray-{r}").iterdir()}
            identical &= a == b
            print(f"  round {r}: local {times['local'][-1]:.2f} s  local x2 "
                  f"{times['local2'][-1]:.2f} s  ray {times['ray'][-1]:.2f} s")  # fmt: skip
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    ratio = statistics.median(lo / ra for lo, ra in zip(times["local"], times["ray"], strict=True))
    ratio2 = statistics.median(
        lo / ra for lo, ra in zip(times["local2"], times["ray"], strict=True)
    )
    return {"identical": identical, "startup_s": startup, "speed_vs_local": ratio,
            "speed_vs_local2": ratio2, "seconds": times}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, few rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=30_000)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--json", default=str(Path(tempfile.gettempdir()) / "distributed.json"))
    parser.add_argument("--streaming-only", action="store_true", help="only target 1")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.samples = 3, 6_000
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    server, endpoint = start_server()
    options = {"key": "bench", "secret": "bench", "endpoint_url": endpoint,
               "client_kwargs": {"region_name": "us-east-1"}}  # fmt: skip
    import boto3

    boto3.client("s3", endpoint_url=options["endpoint_url"], region_name="us-east-1",
                 aws_access_key_id="bench", aws_secret_access_key="bench",
                 ).create_bucket(Bucket="bench")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="lw-bench-dist-"))
    source = columns(args.samples)
    shard_bytes = 4 * 2**20
    try:
        local = work / "local.loadwise"
        loadwise.pack(source, local, shard_bytes=shard_bytes, progress=False)
        url = "s3://bench/data"
        loadwise.pack(source, url, shard_bytes=shard_bytes, progress=False,
                      storage_options=options)  # fmt: skip
        print(f"dataset: {args.samples:,} samples, "
              f"{loadwise.open(local, 'lazy').manifest.num_bytes / 2**20:.1f} MiB")  # fmt: skip
        print("1. streaming, S3 (local server) vs local disk")
        streaming = streaming_targets(local, url, options, args.rounds)
        results: dict[str, Any] = {"streaming": streaming}
        if not args.streaming_only:
            print("2. cache bounded at 1/4 of the dataset")
            results["disk"] = disk_target(url, options)
            print("3. elastic resume trials")
            results["elastic"] = elastic_target(local, args.trials)
            print("4. pack on Ray (2 CPUs) vs local")
            results["ray"] = ray_target(columns(args.samples // 2), max(args.rounds - 2, 1), 2**20)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    results["load"] = os.getloadavg()
    report(results, args.trials, Path(args.json))


def report(results: dict[str, Any], trials: int, saved: Path) -> None:
    """The table of targets, the load average, and every figure to ``saved``."""
    streaming, load = results["streaming"], results["load"]
    rows = [
        ("S3 streaming, cold cache / local, epoch 1", f"{streaming['cold_vs_epoch1']:.2f}x",
         ">= 0.7x"),
        ("  local epoch 1: pages left in page cache", f"{streaming['resident_at_epoch1']:.1%}",
         "(dropped)"),
        ("S3 cold / local, page cache warm", f"{streaming['cold']:.2f}x", "(stricter)"),
        ("  same, fresh memory backed beforehand", f"{streaming['cold_backed']:.2f}x",
         "(VM cost out)"),
        ("the server alone (raw fetch) / local disk", f"{streaming['raw']:.2f}x", "(server)"),
        ("S3 cold epoch / the server alone", f"{streaming['cold_vs_server']:.2f}x", "reported"),
        ("S3 cold, read-ahead in a helper / local", f"{streaming['cold_helper']:.2f}x",
         "(option)"),
        ("S3 streaming, cached / local disk", f"{streaming['warm']:.2f}x", ">= 0.9x"),
    ]  # fmt: skip
    if "disk" in results:
        disk, elastic, ray_result = results["disk"], results["elastic"], results["ray"]
        rows += [
        ("cache peak / (limit + one shard)",
         f"{disk['peak'] / (disk['limit'] + disk['largest_shard']):.2f} "
         f"({disk['samples']} samples)", "<= 1.0"),
        ("elastic trials exactly once", f"{trials - len(elastic['failures'])}/{trials}",
         f"{trials}/{trials}"),
        ("Ray pack byte-identical", str(ray_result["identical"]), "True"),
        ("Ray pack speed / local (1 worker)", f"{ray_result['speed_vs_local']:.2f}x", "reported"),
        ("Ray pack speed / local (2 workers)", f"{ray_result['speed_vs_local2']:.2f}x",
         "reported"),
        ]  # fmt: skip
    print(f"\n{'target':44} {'measured':>22}  goal")
    for name, value, goal in rows:
        print(f"{name:44} {value:>22}  {goal}")
    if "ray" in results:
        print(f"Ray start-up (not counted): {results['ray']['startup_s']:.1f} s")
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    saved.write_text(json.dumps(results, indent=1))
    print(f"per-round figures: {saved}")


if __name__ == "__main__":
    main()
