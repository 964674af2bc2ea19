"""Multimodal targets, as ratios measured in one run: ``python -m benchmarks.multimodal``
(``--quick``: 400 images, 2 rounds, about 3 minutes; the full run takes about 10).

An aiohttp server in its own process on 127.0.0.1 serves ``count`` JPEGs (384 x 384) with
20 ms of latency per request. Each round measures both sides of a target back to back,
alternating which goes first, and a target is judged on the median of its per-round ratios
(this VM drifts up to 2x within minutes):

1. fetch: ``InMemoryImageTextDataset`` from an empty cache (fetch, decode to 224 x 224, pack,
   open; a fresh interpreter, 64 requests in flight) against the documents' row-by-row loop
   (``--docs-rows`` of them, scaled to ``count``: the loop is linear), and against the floor
   max(count x 20 ms / 64, decoding and resizing the same images on all cores with Pillow,
   as users' code does); beside it the same floor with loadwise's own decoder (simplejpeg,
   torch's uint8 resize: ~2.4x Pillow's speed), and the floor with the HTTP client's own
   CPU (aiohttp alone fetching the same URLs, in a fresh interpreter, no loadwise) spread
   over the cores: the cores must do that too;
2. second run: the same load in a fresh interpreter, from the cache: seconds, requests;
3. epochs 2+ with 0 workers: ``loadwise.loader`` against the documents' list of PIL images
   through ``DataLoader(..., collate_fn=collate_in_memory_images)`` turned into a tensor;
4. memory with 2 workers: PSS over the idle tree (same imports, 2 idle workers) against the
   stored bytes and against the documents' list of PIL images;
5. audio: decode + resample 44.1 kHz stereo FLAC to 16 kHz mono on one core, and the
   resamplers compared (speed, and how far a 9 kHz tone folds back at 16 kHz).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmarks import multimodal_audio
from benchmarks.multimodal_runs import (
    DocumentsDataset,
    as_tensor,
    decode_on_all_cores,
    documents_fetch,
    documents_images,
    loadwise_decode_resize,
    photos,
    server_cpu,
    start_server,
    url_dataset,
)

LATENCY = 0.02
IN_FLIGHT = 64


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.multimodal", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="400 images, 2 rounds")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--docs-rows", type=int, default=500, help="rows of the documents' loop")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/loadwise-bench-multimodal"))
    args = parser.parse_args(argv)
    count, rounds = (400, 2) if args.quick else (args.count, args.rounds)
    args.folder.mkdir(parents=True, exist_ok=True)
    files = photos(args.folder, count)
    base, server = start_server(files, LATENCY)
    os.environ.pop("LOADWISE_CACHE", None)
    print(f"{count} JPEGs (384 x 384) at {base}, {LATENCY * 1e3:.0f} ms a request; {_load()}")
    try:
        fetch, cache = fetch_rounds(base, files, rounds, min(args.docs_rows, count), args.folder)
        second = _fresh("load", base, count, cache)
        epochs = epoch_rounds(base, files, cache, rounds=5)
        memory = {
            k: _fresh("memory", base, count, cache, "--kind", k)
            for k in ("idle", "loadwise", "documents")
        }
    finally:
        server.kill()
    audio = multimodal_audio.measure(rounds=3)
    results = {
        "count": count,
        "fetch": fetch,
        "second": second,
        "epochs": epochs,
        "memory": memory,
        "audio": audio,
        "load": _load(),
    }
    (args.folder / "results.json").write_text(json.dumps(results, indent=1))
    print_targets(results)
    return 0


def fetch_rounds(
    base: str, files: list[bytes], rounds: int, docs_rows: int, folder: Path
) -> tuple[list[dict[str, float]], Path]:
    """Per round: loadwise's load from an empty cache, the documents' loop (scaled), and the
    decode floor on all cores; which side goes first alternates."""
    count, out = len(files), []
    urls = [f"{base}/{i}.jpg" for i in range(count)]
    with ProcessPoolExecutor(os.cpu_count() or 1, mp_context=get_context("fork")) as pool:
        decode_on_all_cores(files[:64], pool)  # start the processes
        decode_on_all_cores(files[:64], pool, loadwise_decode_resize)
        for r in range(rounds):
            cache = folder / f"cache-{r}"
            _remove(cache)
            before = server_cpu(base)
            if r % 2 == 0:
                ours = _fresh("load", base, count, cache)
                served = server_cpu(base) - before
                docs = _docs(urls, docs_rows)
            else:
                docs = _docs(urls, docs_rows)
                before = server_cpu(base)
                ours = _fresh("load", base, count, cache)
                served = server_cpu(base) - before
            decode, decode_cpu = decode_on_all_cores(files, pool)
            ours_decode, _ = decode_on_all_cores(files, pool, loadwise_decode_resize)
            client = _fresh("fetch", base, count, cache)
            floor = max(count * LATENCY / IN_FLIGHT, decode)
            cores = os.cpu_count() or 1
            work = max(count * LATENCY / IN_FLIGHT, decode + client["cpu"] / cores)
            out.append({"loadwise": ours["seconds"], "requests": ours["requests"],
                        "documents": docs, "decode_all_cores": decode, "floor": floor,
                        "client_cpu": client["cpu"], "client_seconds": client["seconds"],
                        "floor_with_client": work,
                        "server_cpu": served, "cpu_workers": ours["cpu_workers"],
                        "decode_cpu": decode_cpu, "loadwise_decode_all_cores": ours_decode,
                        "floor_loadwise_decoder": max(count * LATENCY / IN_FLIGHT, ours_decode),
                        "cpu_main": ours["cpu_main"]})  # fmt: skip
            print(f"fetch round {r + 1}: loadwise {ours['seconds']:.2f} s "
                  f"({ours['requests']} requests), documents {docs:.1f} s, floor {floor:.2f} s; "
                  f"{_load()}", flush=True)  # fmt: skip
    return out, cache


def _docs(urls: list[str], rows: int) -> float:
    """The documents' loop over the first ``rows`` URLs, scaled to all of them."""
    started = time.perf_counter()
    documents_fetch(urls[:rows])
    return (time.perf_counter() - started) * len(urls) / rows


def epoch_rounds(base: str, files: list[bytes], cache: Path, rounds: int) -> dict[str, list[float]]:
    """Per round (0 workers), samples/s of loadwise's epochs over the documents', and over
    the limit any in-memory loader meets: NumPy gathering the same shuffled batches of the
    same uint8 images (the batch's bytes must be copied; memory bandwidth bounds it)."""
    import numpy as np
    from torch.utils.data import DataLoader

    import loadwise

    os.environ["LOADWISE_CACHE"] = str(cache)
    ours = loadwise.InMemoryImageTextDataset(url_dataset(base, len(files)), max_samples=len(files))
    assert ours.report.from_cache, "the fetch rounds left this entry"
    fast = loadwise.loader(ours, 64, shuffle=True, seed=0, num_workers=0)
    docs = DataLoader(DocumentsDataset(documents_images(files)), 64, shuffle=True,
                      collate_fn=loadwise.collate_in_memory_images)  # fmt: skip
    stored = ours.get_batch(np.arange(len(ours)))["image"].numpy()
    order = np.random.default_rng(0).permutation(len(stored))

    def loadwise_epoch() -> int:
        return sum(len(batch["image"]) for batch in fast)

    def documents_epoch() -> int:
        return sum(len(as_tensor(batch["images"])) for batch in docs)

    # Every side iterates its batches as a training loop does: ``for batch in ...`` holds
    # batch k while k + 1 is made, so each gather writes a buffer other than the one just
    # read (a limit that dropped each batch first reused one warm buffer: 0.85x for loadwise
    # then came from the consumer, get_batch holding its batch measured the same).
    def limit_batches() -> Any:
        for i in range(0, len(order), 64):
            yield stored[order[i : i + 64]]

    def dataset_batches() -> Any:  # the dataset alone, without the loader around it
        for i in range(0, len(order), 64):
            yield ours.get_batch(order[i : i + 64])["image"]

    def limit_epoch() -> int:
        return sum(len(batch) for batch in limit_batches())

    def dataset_epoch() -> int:
        return sum(len(batch) for batch in dataset_batches())

    _rate(loadwise_epoch), _rate(documents_epoch), _rate(limit_epoch)  # warm all
    out: dict[str, list[float]] = {"loadwise/documents": [], "loadwise/limit": [],
                                   "limit/documents": [], "get_batch/limit": []}  # fmt: skip
    for r in range(rounds):
        sides = [("ours", loadwise_epoch), ("docs", documents_epoch), ("limit", limit_epoch),
                 ("get_batch", dataset_epoch)]  # fmt: skip
        rates = {name: _rate(epoch) for name, epoch in (sides if r % 2 == 0 else sides[::-1])}
        out["loadwise/documents"].append(rates["ours"] / rates["docs"])
        out["loadwise/limit"].append(rates["ours"] / rates["limit"])
        out["limit/documents"].append(rates["limit"] / rates["docs"])
        out["get_batch/limit"].append(rates["get_batch"] / rates["limit"])
    return out


def _rate(epoch: Any, seconds: float = 0.5) -> float:
    started, samples = time.perf_counter(), 0
    while samples == 0 or time.perf_counter() - started < seconds:
        samples += epoch()
    return samples / (time.perf_counter() - started)


def _fresh(what: str, base: str, count: int, cache: Path, *extra: str) -> dict[str, Any]:
    """One measurement in a fresh interpreter, with ``cache`` as the loadwise cache."""
    cmd = [sys.executable, "-m", "benchmarks.multimodal_runs", what, base, str(count),
           "--in-flight", str(IN_FLIGHT), *extra]  # fmt: skip
    env = {**os.environ, "LOADWISE_CACHE": str(cache)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def print_targets(r: dict[str, Any]) -> None:
    """The targets as ratios, with the figures behind them."""
    fetch = r["fetch"]
    speedup = statistics.median(f["documents"] / f["loadwise"] for f in fetch)
    of_floor = statistics.median(f["loadwise"] / f["floor"] for f in fetch)
    of_work = statistics.median(f["loadwise"] / f["floor_with_client"] for f in fetch)
    of_own = statistics.median(f["loadwise"] / f["floor_loadwise_decoder"] for f in fetch)
    cpu = statistics.median(
        (f["cpu_workers"] + f["cpu_main"]) / (f["decode_cpu"] + f["client_cpu"]) for f in fetch
    )
    mem = r["memory"]
    over = {k: (mem[k]["pss"] - mem["idle"]["pss"]) / 2**20 for k in ("loadwise", "documents")}
    stored = mem["loadwise"]["stored_bytes"] / 2**20
    epochs = statistics.median(r["epochs"]["loadwise/documents"])
    of_limit = statistics.median(r["epochs"]["loadwise/limit"])
    ceiling = statistics.median(r["epochs"]["limit/documents"])
    of_batch = statistics.median(r["epochs"].get("get_batch/limit", [0.0]))
    beyond = (over["loadwise"] - mem["loadwise"].get("ring", 0) / 2**20) / stored
    audio, second = r["audio"], r["second"]
    rows = [
        ("fetch: documents' loop / loadwise", f"{speedup:.1f}x", ">= 15x", speedup >= 15),
        ("fetch: loadwise / floor", f"{of_floor:.2f}x", "<= 1.3x", of_floor <= 1.3),
        ("  (loadwise / floor + HTTP client on all cores)", f"{of_work:.2f}x", "<= 1.3x",
         of_work <= 1.3),
        ("  (loadwise / floor with loadwise's decoder)", f"{of_own:.2f}x", "<= 1.3x",
         of_own <= 1.3),
        ("  (CPU s: loadwise / decode + HTTP client)", f"{cpu:.2f}x", "", cpu <= 1.3),
        ("epochs 2+, 0 workers: loadwise / documents", f"{epochs:.1f}x", ">= 30x", epochs >= 30),
        ("  (NumPy gather limit / documents)", f"{ceiling:.1f}x", "", ceiling >= 30),
        ("  (loadwise / NumPy gather limit)", f"{of_limit:.2f}x", ">= 0.9x", of_limit >= 0.9),
        ("  (dataset.get_batch / NumPy gather limit)", f"{of_batch:.2f}x", ">= 0.9x",
         of_batch >= 0.9),
        ("memory w2: over idle / stored", f"{over['loadwise'] / stored:.2f}x", "<= 1.15x",
         over["loadwise"] / stored <= 1.15),
        ("  (over idle - ring slots in flight) / stored", f"{beyond:.2f}x", "<= 1.15x",
         beyond <= 1.15),
        ("memory w2: loadwise / documents", f"{over['loadwise'] / over['documents']:.2f}x",
         "<= 0.5x", over["loadwise"] / over["documents"] <= 0.5),
        ("second run: seconds (requests)", f"{second['seconds']:.2f} s ({second['requests']})",
         "< 2 s (0)", second["seconds"] < 2 and second["requests"] == 0),
        ("audio: decode + resample, x real time", f"{audio['decode_resample_rt']:,.0f}x", ">= 500x",
         audio["decode_resample_rt"] >= 500),
    ]  # fmt: skip
    print(f"\n{'target':44s}{'figure':>16s}{'wanted':>10s}  ok")
    for name, figure, wanted, ok in rows:
        print(f"{name:44s}{figure:>16s}{wanted:>10s}  {'PASS' if ok else 'FAIL'}")
    for i, f in enumerate(fetch):
        print(f"fetch round {i + 1} (s): loadwise {f['loadwise']:.2f}, documents "
              f"{f['documents']:.1f}, decode on all cores {f['decode_all_cores']:.2f} (Pillow), "
              f"{f['loadwise_decode_all_cores']:.2f} (loadwise's decoder), floor "
              f"{f['floor']:.2f}; requests {f['requests']}; CPU s: loadwise "
              f"{f['cpu_workers'] + f['cpu_main']:.2f} (main {f['cpu_main']:.2f}), decode on "
              f"all cores {f['decode_cpu']:.2f}, aiohttp alone {f['client_cpu']:.2f} "
              f"({f['client_seconds']:.2f} s), server {f['server_cpu']:.2f}")  # fmt: skip
    for name, ratios in r["epochs"].items():
        print(f"epochs, {name} per round: " + ", ".join(f"{x:.2f}" for x in ratios))
    print(f"memory over the idle tree: loadwise {over['loadwise']:.0f} MiB, documents "
          f"{over['documents']:.0f} MiB, stored {stored:.0f} MiB; idle tree "
          f"{mem['idle']['pss'] / 2**20:.0f} MiB")  # fmt: skip
    ours, idle = mem["loadwise"], mem["idle"]
    if "ring" in ours:
        beyond_ring = (over["loadwise"] - ours["ring"] / 2**20) / stored
        rest = over["loadwise"] - (ours["shared"] + ours["ring"]) / 2**20
        print(f"loadwise over the idle tree, by kind: stored {stored:.0f} MiB; shared memory "
              f"besides the ring {ours['shared'] / 2**20:.0f} MiB, ring slots (batches in flight) "
              f"{ours['ring'] / 2**20:.0f} MiB, rest {rest:.0f} MiB (private over idle: "
              f"{(ours['private'] - idle['private']) / 2**20:.0f} MiB); "
              f"(over idle - ring) / stored {beyond_ring:.2f}x")  # fmt: skip
    multimodal_audio.print_table(audio)
    print(r["load"])


if __name__ == "__main__":
    sys.exit(main())
