"""Issue 19's own-figure ratios from interleaved rounds: ``python -m benchmarks.rounds19``.

Separate runs swing up to 2x on this VM, so each ratio here alternates epochs of its two
sides in one process (ABBA order), several rounds, and reports the median of the per-round
ratios: decoded 105x105 eager with 2 workers vs 0, PNG and JPEG lazy with 2 workers vs 0,
cached mode warm vs eager on the same decoded 256x256 photos, lazy on 150 KB rows vs the
``numpy.memmap`` gather; and loadwise against the best of its peers (the benchmark's own
contenders, ``contenders.py`` / ``peers.py``) in the same setting, each round's ratio taken
against that round's fastest peer. Reads the data ``python -m benchmarks`` built
(``--data``, default ``/tmp/loadwise-bench-full``); ``--only TEXT`` runs the rows naming it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

import loadwise
from benchmarks.consume import read_every_page
from loadwise.sampling.order import batches, epoch_order

PAIRS = {  # name: (pack, mode, workers) for the numerator, then the denominator
    "decoded 105x105 eager: w2 / w0": (("lw-decoded-2", "eager", 2), ("lw-decoded-2", "eager", 0)),
    "PNG lazy: w2 / w0": (("lw-png", "lazy", 2), ("lw-png", "lazy", 0)),
    "JPEG lazy: w2 / w0": (("lw-encoded", "lazy", 2), ("lw-encoded", "lazy", 0)),
    "cached warm / eager, 256x256 photos, w0": (
        ("lw-encoded", "cached", 0), ("lw-photos256", "eager", 0)),
    "lazy warm / numpy.memmap gather, 224x224 photos": (
        ("lw-photos", "lazy", 0), ("photos.npy", "memmap", 0)),
    "eager w0 loader / get_batch, 224x224 photos": (
        ("lw-photos", "eager", 0), ("lw-photos", "get_batch", 0)),
    "eager w0 loader / numpy gather in RAM, 224x224 photos": (
        ("lw-photos", "eager", 0), ("photos.npy", "numpy", 0)),
}  # fmt: skip


#: Each side of a round runs whole epochs for at least this long.
MIN_SECONDS = 1.0

#: name: (a contender of the benchmark, the peers it is held against)
VERSUS = {
    "PNG w0: loadwise / best peer": ("PNG loadwise lazy w0", (
        "per-file PIL w0", "PNG HF datasets w0", "PNG WebDataset w0")),
    "PNG w2: loadwise / best peer": ("PNG loadwise lazy w2", (
        "per-file PIL w2", "PNG HF datasets w2", "PNG WebDataset w2")),
    "JPEG w2: loadwise / best peer": ("JPEG loadwise lazy w2", (
        "JPEG per-file PIL w2", "JPEG HF datasets w2", "JPEG WebDataset w2")),
}  # fmt: skip


def contender(data: Path, name: str) -> Callable[[], float]:
    """One epoch of the benchmark's contender ``name`` per call, as samples/s."""
    from benchmarks.contenders import CONTENDERS
    from benchmarks.peers import PEERS

    record = json.loads((data / "built.json").read_text())
    _, build, workers = {**CONTENDERS, **PEERS}[name]
    made = build(data, record, workers)

    def one() -> float:
        started, count = time.perf_counter(), 0
        for batch in made.epochs_of():
            read_every_page(batch)
            count += len(batch["label"] if isinstance(batch, dict) else batch[1])
        return count / (time.perf_counter() - started)

    one()
    return one


def versus(data: Path, ours: str, peers: tuple[str, ...], rounds: int) -> list[float]:
    """Per round: ours / the fastest peer of that round (sides alternate in order)."""
    sides = [contender(data, n) for n in (ours, *peers)]
    ratios = []
    for r in range(rounds):
        order = list(range(len(sides)))[:: 1 if r % 2 == 0 else -1]
        rates = dict(zip(order, [sides[i]() for i in order], strict=True))
        ratios.append(rates[0] / max(rates[i] for i in range(1, len(sides))))
    return ratios


def epochs(data: Path, pack: str, mode: str, workers: int) -> Callable[[], float]:
    """One epoch of a loader per call, as samples/s (its first epoch is run here); mode
    ``memmap`` / ``numpy``: the limit, one fancy-index gather per batch from
    ``numpy.load(mmap_mode)`` or from RAM; ``get_batch``: the dataset's own call per batch."""
    run: Any
    if mode in ("memmap", "numpy"):
        images = np.load(data / pack, mmap_mode="r" if mode == "memmap" else None)
        labels = np.load(data / "photos-labels.npy")
        run = _GatherEpochs(
            lambda idx: {
                "image": torch.from_numpy(images[idx]),
                "label": torch.from_numpy(labels[idx]),
            },
            len(images),
        )
    elif mode == "get_batch":  # the loader's work without the loader: one call a batch
        ds = loadwise.open(data / pack, "eager", fields=["image", "label"])
        run = _GatherEpochs(ds.get_batch, len(ds))
    else:
        ds = loadwise.open(data / pack, mode, fields=["image", "label"])
        run = loadwise.loader(ds, 64, seed=0, num_workers=workers)

    def one() -> float:
        """Whole epochs for at least ``MIN_SECONDS`` (an in-RAM epoch takes ~30 ms here)."""
        started, count = time.perf_counter(), 0
        while count == 0 or time.perf_counter() - started < MIN_SECONDS:
            for batch in run:
                read_every_page(batch)
                count += len(batch["label"])
        return count / (time.perf_counter() - started)

    one()  # start workers, fill caches, warm the page cache
    return one


class _GatherEpochs:
    """The shared seeded order, each batch one call of ``gather`` (no DataLoader)."""

    def __init__(self, gather: Callable[[np.ndarray], Any], n: int) -> None:
        self.gather, self.n, self.epoch = gather, n, 0

    def __iter__(self) -> Iterator[Any]:
        self.epoch += 1
        for idx in batches(epoch_order(self.n, 0, self.epoch), 64):
            yield self.gather(idx)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rounds19", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("/tmp/loadwise-bench-full"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="run the pairs whose name contains this")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    for name, (top, bottom) in PAIRS.items():
        if args.only not in name:
            continue
        a, b = epochs(args.data, *top), epochs(args.data, *bottom)
        ratios = []
        for r in range(args.rounds):
            first, second = (a, b) if r % 2 == 0 else (b, a)
            x, y = first(), second()
            ratios.append((x / y) if first is a else (y / x))
        _show(out, name, ratios)
        del a, b
    for name, (ours, peers) in VERSUS.items():
        if args.only in name:
            _show(out, name, versus(args.data, ours, peers, args.rounds))
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


def _show(out: dict[str, Any], name: str, ratios: list[float]) -> None:
    out[name] = {"median": statistics.median(ratios), "rounds": ratios}
    print(f"{name}: median {statistics.median(ratios):.2f}x (rounds "
          f"{min(ratios):.2f}-{max(ratios):.2f})", flush=True)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
