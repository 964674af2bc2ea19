"""Figures measured in the driver for context: memcpy bandwidth, single-core JPEG decode rates,
and the PSS of an idle interpreter with the same imports (subtracted in memory targets)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
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


_BUFFER: dict[tuple[int, int], np.ndarray] = {}


def _simplejpeg_into_buffer(data: bytes) -> np.ndarray:
    """No allocation per image and the crop as a view: what a batch decode can reach."""
    import simplejpeg

    height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    out = _BUFFER.setdefault((height, width), np.empty((height, width, 3), np.uint8))
    simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=out)
    top, left = (height - CROP) // 2, (width - CROP) // 2
    return out[top : top + CROP, left : left + CROP]


def _loadwise(data: bytes) -> np.ndarray:
    from loadwise.format.codecs import decode_image

    return _crop(decode_image(data, mode="RGB").transpose(1, 2, 0))


def decode_rates(folder: Path, count: int = 300, seconds: float = 1.0) -> dict[str, float]:
    """Single-core JPEG decode + center crop to 224, samples/s, per decoder."""
    files, _ = image_files(folder / "photos", ".jpg")
    blobs = [f.read_bytes() for f in files[:count]]
    rates: dict[str, float] = {}
    for name, fn in (
        ("PIL", _pil),
        ("simplejpeg", _simplejpeg),
        ("simplejpeg into one buffer", _simplejpeg_into_buffer),
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


IDLE = """
import json, torch, loadwise, benchmarks.contenders
from loadwise.monitor.memory import process_memory
m = process_memory(include_children=False)
file = sum(p.pss_file or 0 for p in m.processes)
print(json.dumps({"pss": m.total_pss, "uss": m.total_uss, "file": file}))
"""


def idle_memory() -> dict[str, Any]:
    """PSS and USS of a fresh interpreter that imported what every contender imports."""
    out = subprocess.run([sys.executable, "-c", IDLE], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
