"""Full runs only: a packed dataset of >= 4 GB for time to first batch (lazy, streaming) and
streaming's memory on a dataset far bigger than its budget.

    python -m benchmarks.large FOLDER        # builds FOLDER/large.loadwise once, prints JSON

Built from arrays with ``loadwise.pack`` (28,000 samples of 3x224x224 uint8, 4.2 GB).
The page cache is warm after building (dropping it needs root), so first-batch times are
those of a dataset used recently; the per-block checksums mean only touched blocks are hashed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import loadwise
from loadwise.monitoring.measure import measure

SAMPLES, SHAPE = 28_000, (3, 224, 224)


def build_large(folder: Path) -> Path:
    dest = folder / "large.loadwise"
    if (dest / "manifest.json").is_file():
        return dest
    raw = folder / "large.npy"
    images = np.lib.format.open_memmap(raw, mode="w+", dtype=np.uint8, shape=(SAMPLES, *SHAPE))
    pattern = (np.arange(np.prod(SHAPE) * 64, dtype=np.uint64) * 2654435761 >> 24).astype(np.uint8)
    for start in range(0, SAMPLES, 64):
        stop = min(start + 64, SAMPLES)
        images[start:stop] = pattern[: (stop - start) * int(np.prod(SHAPE))].reshape(-1, *SHAPE)
    images.flush()
    labels = np.arange(SAMPLES, dtype=np.int64) % 1000
    loadwise.pack({"image": images, "label": labels}, dest, progress=False)
    del images
    raw.unlink()
    return dest


def first_batch(path: Path, mode: str) -> dict[str, Any]:
    """Seconds from ``open`` to the first batch of a shuffled loader, and streaming memory.

    The modules are imported before the clock starts (``import loadwise`` imports them on
    first use): a training script has imported torch long before it opens its data."""
    _ = loadwise.open, loadwise.loader
    started = time.perf_counter()
    dataset = loadwise.open(path, mode)
    run = loadwise.loader(dataset, 64, shuffle=True, seed=0)
    next(iter(run))
    ttfb = time.perf_counter() - started
    m = measure(f"large {mode}", run, epochs=1, max_seconds=5.0)
    return {"mode": mode, "first_batch_seconds": ttfb, "peak_pss": m.peak_pss,
            "samples_per_second": m.rates[0], "bytes": dataset.manifest.num_bytes}  # fmt: skip


def main() -> int:
    folder = Path(sys.argv[1])
    if len(sys.argv) > 2:  # a child: one mode, fresh process
        print(json.dumps(first_batch(folder / "large.loadwise", sys.argv[2])))
        return 0
    build_large(folder)
    out = []
    for mode in ("lazy", "streaming"):
        done = subprocess.run([sys.executable, "-m", "benchmarks.large", str(folder), mode],
                              capture_output=True, text=True, check=True)  # fmt: skip
        out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
