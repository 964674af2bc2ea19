"""The pieces ``benchmarks/multimodal.py`` runs: the image server, the photos, the documents'
way, and each measurement that needs a fresh interpreter (``python -m
benchmarks.multimodal_runs <what> ...`` prints one JSON line).

- ``load``: ``InMemoryImageTextDataset`` over the URLs, from an empty cache (fetch, decode,
  pack, open) or, run again, from the cache: seconds, and requests the server received.
- ``memory``: an epoch with 2 DataLoader workers over loadwise's eager data, over the
  documents' list of PIL images, or over nothing (the idle tree); PSS of main + workers.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import socket
import sys
import time
import urllib.request
from multiprocessing.context import ForkProcess
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

SIZE = (224, 224)


# -- data and server ---------------------------------------------------------------------------


def photos(folder: Path, count: int) -> list[bytes]:
    """``count`` JPEGs (384 x 384 photos, rendered or cut from scikit-image's), made once."""
    from loadwise.testing import make_photo_folder

    root = folder / f"photos-{count}"
    if not (root / ".done").exists():
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        make_photo_folder(root, classes=10, per_class=count // 10, size=384, seed=7, workers=2)
        (root / ".done").touch()
    return [p.read_bytes() for p in sorted(root.rglob("*.jpg"))]


def start_server(files: list[bytes], latency: float) -> tuple[str, ForkProcess]:
    """An aiohttp server in its own process on 127.0.0.1 answering ``/<i>.jpg`` after
    ``latency`` seconds, and ``/count`` (requests so far, not counted); its base URL."""
    import multiprocessing

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    process = multiprocessing.get_context("fork").Process(
        target=_serve, args=(sock, files, latency), daemon=True
    )
    process.start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    for _ in range(100):
        try:
            requests(base)
            return base, process
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the image server did not start")


def _serve(sock: socket.socket, files: list[bytes], latency: float) -> None:
    from aiohttp import web

    count = [0]

    async def image(request: web.Request) -> web.Response:
        count[0] += 1
        await asyncio.sleep(latency)
        index = int(request.match_info["index"])
        return web.Response(body=files[index], content_type="image/jpeg")

    async def counted(request: web.Request) -> web.Response:
        if request.query.get("cpu"):
            used = resource.getrusage(resource.RUSAGE_SELF)
            return web.Response(text=f"{used.ru_utime + used.ru_stime:.3f}")
        return web.Response(text=str(count[0]))

    app = web.Application()
    app.add_routes([web.get("/count", counted), web.get("/{index}.jpg", image)])
    web.run_app(app, sock=sock, print=None, access_log=None, backlog=4096)


def requests(base: str) -> int:
    """Requests the server has answered so far."""
    with urllib.request.urlopen(f"{base}/count", timeout=5) as answer:
        return int(answer.read())


def server_cpu(base: str) -> float:
    """CPU seconds the server process has used so far (it shares this machine's cores)."""
    with urllib.request.urlopen(f"{base}/count?cpu=1", timeout=5) as answer:
        return float(answer.read())


def url_dataset(base: str, count: int) -> Any:
    import datasets

    urls = [f"{base}/{i}.jpg" for i in range(count)]
    return datasets.Dataset.from_dict(
        {"image_url": urls, "caption": [f"photo {i}" for i in range(count)]}
    )


# -- the documents' way --------------------------------------------------------------------------


def documents_fetch(urls: list[str]) -> list[Image.Image]:
    """The documents' loop: each URL downloaded, decoded and resized, one after another."""
    images = []
    for url in urls:
        try:
            data = urllib.request.urlopen(url, timeout=10).read()
            images.append(Image.open(io.BytesIO(data)).convert("RGB").resize(SIZE))
        except Exception:  # the documents' fallback: a blank image
            images.append(Image.new("RGB", SIZE))
    return images


def documents_images(files: list[bytes]) -> list[Image.Image]:
    """The same list of PIL images, decoded from the bytes (no server needed)."""
    return [Image.open(io.BytesIO(f)).convert("RGB").resize(SIZE) for f in files]


class DocumentsDataset(Dataset):
    """The documents' in-memory dataset: a list of PIL images and captions."""

    def __init__(self, images: list[Image.Image]) -> None:
        self.images = images
        self.captions = [f"photo {i}" for i in range(len(images))]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i], "caption": self.captions[i]}


def as_tensor(images: list[Image.Image]) -> torch.Tensor:
    """What a training step must do with the documents' batch: one uint8 tensor."""
    return torch.stack([torch.from_numpy(np.array(im)).permute(2, 0, 1) for im in images])


def decode_resize(data: bytes) -> np.ndarray:
    """One image decoded and resized as users' code does it (Pillow, draft, bilinear)."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", SIZE)
        return np.asarray(image.convert("RGB").resize(SIZE, Image.Resampling.BILINEAR))


def loadwise_decode_resize(data: bytes) -> np.ndarray:
    """One image decoded and resized as loadwise's pack does it (simplejpeg at Pillow's
    draft scale, torch's uint8 antialiased bilinear)."""
    from loadwise.format.codecs import decode_image

    return decode_image(data, mode="RGB", size=SIZE)


def _decode_all(files: list[bytes], decode: Any = decode_resize) -> int:
    for data in files:
        decode(data)
    return len(files)


def decode_on_all_cores(
    files: list[bytes], pool: Any, decode: Any = decode_resize
) -> tuple[float, float]:
    """Seconds to decode and resize ``files`` (with ``decode``, a module-level function)
    split over ``pool``'s processes, and the CPU seconds those processes used (the
    contention-proof figure on a shared machine)."""
    import psutil

    workers = pool._max_workers
    parts = [files[i::workers] for i in range(workers)]
    processes = [psutil.Process(pid) for pid in pool._processes]
    used = sum(sum(p.cpu_times()[:2]) for p in processes)
    started = time.perf_counter()
    assert sum(pool.map(_decode_all, parts, [decode] * workers)) == len(files)
    seconds = time.perf_counter() - started
    return seconds, sum(sum(p.cpu_times()[:2]) for p in processes) - used


# -- measurements in a fresh interpreter ---------------------------------------------------------


def load(base: str, count: int, in_flight: int, workers: int) -> dict[str, Any]:
    import loadwise
    from loadwise.sources import FetchOptions

    rows = url_dataset(base, count)
    before = requests(base)
    main_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    dataset = loadwise.InMemoryImageTextDataset(
        rows,
        max_samples=count,
        image_size=SIZE,
        fetch=FetchOptions(in_flight=in_flight),
        workers=workers,
    )
    seconds = time.perf_counter() - started
    report = dataset.report
    main = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": seconds,
        "cpu_main": main.ru_utime + main.ru_stime - main_before.ru_utime - main_before.ru_stime,
        "cpu_workers": children.ru_utime + children.ru_stime,
        "requests": requests(base) - before,
        "valid": report.valid,
        "from_cache": report.from_cache,
        "stored_bytes": report.stored_bytes,
    }


def fetch(base: str, count: int, in_flight: int) -> dict[str, Any]:
    """The HTTP client's own cost, with no loadwise in it: aiohttp fetching every URL with
    ``in_flight`` requests at once, in this process (seconds and CPU seconds)."""
    import aiohttp

    async def fetch_all() -> int:
        limit = asyncio.Semaphore(in_flight)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(url: str) -> int:
                async with limit, session.get(url) as response:
                    return len(await response.read())

            sizes = await asyncio.gather(*(one(f"{base}/{i}.jpg") for i in range(count)))
        return sum(sizes)

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    nbytes = asyncio.run(fetch_all())
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"seconds": seconds, "cpu": cpu, "bytes": nbytes}


def memory(kind: str, base: str, count: int, folder: Path) -> dict[str, Any]:
    """PSS of the tree after two epochs with 2 persistent workers, the workers still alive;
    every kind imports the same (datasets, loadwise), so the idle tree is subtracted fairly."""
    import datasets  # noqa: F401

    import loadwise
    from loadwise.monitoring.memory import process_memory

    if kind == "loadwise":
        dataset = loadwise.InMemoryImageTextDataset(
            url_dataset(base, count), max_samples=count, image_size=SIZE
        )
        batches: Any = loadwise.loader(dataset, 64, shuffle=True, seed=0, num_workers=2)
        stored = dataset.report.stored_bytes
    else:
        source: Any = range(10_000)
        if kind == "documents":
            source = DocumentsDataset(documents_images(photos(folder, count)))
        collate = loadwise.collate_in_memory_images if kind == "documents" else None
        batches = DataLoader(
            source, 64, shuffle=True, num_workers=2, persistent_workers=True, collate_fn=collate
        )
        stored = 0
    for _ in range(2):  # two epochs: what the workers copy shows by then
        for batch in batches:
            if kind == "documents":
                as_tensor(batch["images"])
    tree = process_memory(include_children=True)
    parts = pss_by_kind([p.pid for p in tree.processes])
    return {"pss": tree.total_pss, "processes": len(tree.processes), "stored_bytes": stored,
            **parts}  # fmt: skip


def pss_by_kind(pids: list[int]) -> dict[str, int]:
    """PSS of the tree's mappings by what they hold: ``ring`` (the worker transport's
    ``memfd:loadwise-batches`` slots, batches in flight), ``shared`` (other shared memory:
    torch's, memfd or ``/dev/shm``), ``private`` (heap, libraries, and the eager data: an
    anonymous private map the forked workers share copy-on-write)."""
    out = {"ring": 0, "shared": 0, "private": 0}
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
        except OSError:
            continue
        kind = "private"
        for line in lines:
            head = line.split(maxsplit=6)
            if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):
                name = head[5] if len(head) > 5 else ""
                if "loadwise-batches" in name:
                    kind = "ring"
                elif "memfd:" in name or "/dev/shm" in name:  # not libtorch_*.so
                    kind = "shared"
                else:
                    kind = "private"
            elif line.startswith("Pss:"):
                out[kind] += int(line.split()[1]) * 1024
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("load", "fetch", "memory"))
    parser.add_argument("base")
    parser.add_argument("count", type=int)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--kind", default="loadwise")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/loadwise-bench-multimodal"))
    args = parser.parse_args()
    if args.what == "load":
        out = load(args.base, args.count, args.in_flight, args.workers)
    elif args.what == "fetch":
        out = fetch(args.base, args.count, args.in_flight)
    else:
        out = memory(args.kind, args.base, args.count, args.folder)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
