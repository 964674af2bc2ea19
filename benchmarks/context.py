"""Figures measured in the driver for context: memcpy bandwidth, single-core JPEG decode rates,
and the PSS of an idle interpreter with the same imports, alone and with 2 idle DataLoader
workers by fork and by spawn (each subtracted from the contenders of its shape)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.data import image_files

CROP = 224


def memcpy_bytes_per_second(nbytes: int = 256 << 20, rounds: int = 5) -> float:
    """Best of a few copies of a ``nbytes`` buffer, bytes per second."""
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - started)
    return nbytes / best


def _crop(array: np.ndarray) -> np.ndarray:
    top, left = (array.shape[0] - CROP) // 2, (array.shape[1] - CROP) // 2
    return np.ascontiguousarray(array[top : top + CROP, left : left + CROP].transpose(2, 0, 1))


def _pil(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return _crop(np.asarray(image.convert("RGB")))


def _simplejpeg(data: bytes) -> np.ndarray:
    import simplejpeg

    return _crop(simplejpeg.decode_jpeg(data, colorspace="RGB"))


_BATCH: dict[tuple[int, int], tuple[np.ndarray, list[int]]] = {}


def _simplejpeg_batch_buffer(data: bytes) -> np.ndarray:
    """Into the next slot of a reused 64-image buffer, cropped as a view: a batch decode on
    one core with no allocation per image (one reused image buffer would stay in the CPU
    cache and flatter the rate)."""
    import simplejpeg

    height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    out, slot = _BATCH.setdefault(
        (height, width), (np.empty((64, height, width, 3), np.uint8), [0])
    )
    slot[0] = (slot[0] + 1) % len(out)
    simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=out[slot[0]])
    top, left = (height - CROP) // 2, (width - CROP) // 2
    return out[slot[0], top : top + CROP, left : left + CROP]


def _loadwise(data: bytes) -> np.ndarray:
    from loadwise.format.codecs import decode_image

    return _crop(decode_image(data, mode="RGB").transpose(1, 2, 0))


def decode_rates(folder: Path, count: int = 300, seconds: float = 1.0) -> dict[str, float]:
    """Single-core JPEG decode + center crop to 224, samples/s, per decoder."""
    files, _ = image_files(folder / "photos", ".jpg")
    blobs = [f.read_bytes() for f in files[:: max(1, len(files) // count)]]  # every class
    rates: dict[str, float] = {}
    for name, fn in (
        ("PIL", _pil),
        ("simplejpeg", _simplejpeg),
        ("simplejpeg, batch buffer", _simplejpeg_batch_buffer),
        ("loadwise codec", _loadwise),
    ):
        try:
            fn(blobs[0])
        except ImportError:
            continue
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            fn(blobs[n % len(blobs)])
            n += 1
        rates[name] = n / (time.perf_counter() - started)
    return rates


def parallel_decode_rate(
    folder: Path, threads: int, count: int = 300, seconds: float = 1.0
) -> float | None:
    """JPEG decode on ``threads`` threads at once, batches of 64 into one buffer, samples/s:
    what this machine's cores reach together (their shared caches and memory included);
    None without simplejpeg (the ``jpeg`` extra)."""
    try:
        import simplejpeg
    except ImportError:
        return None

    files, _ = image_files(folder / "photos", ".jpg")
    blobs = [f.read_bytes() for f in files[:: max(1, len(files) // count)]]
    height, width, _, _ = simplejpeg.decode_jpeg_header(blobs[0])
    out = np.empty((64, height, width, 3), np.uint8)

    def decode(rows: range, first: int) -> None:
        for j in rows:
            simplejpeg.decode_jpeg(blobs[(first + j) % len(blobs)], colorspace="RGB", buffer=out[j])

    step = -(-64 // threads)
    with ThreadPoolExecutor(threads) as pool:
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            list(pool.map(decode, [range(i, min(i + step, 64)) for i in range(0, 64, step)],
                          [n] * threads))  # fmt: skip
            n += 64
        return n / (time.perf_counter() - started)


def pack_seconds(folder: Path, rounds: int = 3) -> dict[str, float]:
    """Best of ``rounds`` seconds to pack the PNG tree with 1 and with 2 processes, measured
    with this run's code and alternated (the packed copies the contenders read are built once)."""
    import loadwise

    best = {"1": float("inf"), "2": float("inf")}
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        for _ in range(rounds):
            for workers in best:
                dest = Path(scratch) / f"pack-{workers}"
                started = time.perf_counter()
                loadwise.pack(folder / "omniglot", dest, image_mode="L", workers=int(workers),
                              progress=False, overwrite=True)  # fmt: skip
                best[workers] = min(best[workers], time.perf_counter() - started)
    return best


IDLE = """
import json, sys, multiprocessing, torch, loadwise, benchmarks.contenders
from loadwise.monitoring.memory import process_memory
workers, start = int(sys.argv[1]), sys.argv[2]
if workers:  # a DataLoader serving nothing: what its processes cost by themselves
    loader = torch.utils.data.DataLoader(range(10_000), batch_size=64, num_workers=workers,
                                         multiprocessing_context=start)
    batches = iter(loader)
    for _ in range(8):
        next(batches)
m = process_memory(include_children=True)
file = sum(p.pss_file or 0 for p in m.processes)
print(json.dumps({"pss": m.total_pss, "uss": m.total_uss, "file": file}))
"""


def idle_memory(workers: int = 0, start: str = "fork") -> dict[str, Any]:
    """PSS and USS of a fresh interpreter that imported what every contender imports, with
    ``workers`` idle DataLoader workers started by ``start`` (fork or spawn)."""
    cmd = [sys.executable, "-c", IDLE, str(workers), start]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
