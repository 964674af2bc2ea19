"""Multi-scale training: peak memory of a step, throughput of the scale path, batch resize.

python -m benchmarks.multiscale [--quick] [--rounds N]

Data: real photo crops (``loadwise.testing.make_photo_folder``, 256x256 JPEG), packed and
opened eager as uint8. Scales 224, 448, 672, batch 32, a small CNN (three strided 3x3
convolutions, 16-32-64 channels, pooled, linear), the loss summed over the scales.

1. Memory: one training step (the batch made from the dataset, forward + backward) in a
   fresh interpreter per path, peak resident size over the step (``VmHWM`` reset first, so
   the figure is the step's own high-water mark above where it started). Legacy holds every
   scale of the batch and one graph over all three; memory-efficient gets a budget of 0.3x
   the legacy peak, measures its step's cost per pixel on a small probe step, and groups
   the scales (micro-batches where a scale does not fit), accumulating gradients. The
   gradients of both are compared. "one scale at a time" is the documents' memory-efficient
   loop (every scale alone at the whole batch), for reference.
2. Throughput of the scale path (the batch from the dataset to every scale's normalised
   float32 images): memory-efficient (base batch, scales made per group at the budget),
   legacy on loadwise (every scale made in ``get_batch``, a batch at a time) and the
   documents' per-image loop (PIL resize, ``ToTensor``, ``Normalize`` per image, then
   ``torch.stack``: what torchvision's ``Compose`` does with PIL images). Rounds alternate
   the order; the figure is the median of the per-round ratios. The full training step's
   rate is printed beside it (context, not a target).
3. Batch resize on the CPU (uint8, batch 32, 224 -> 448 and 672 -> 224) against PIL resizing
   the same images one at a time, both on the same cores: torch on all of them, PIL on a
   thread per core (its resize releases the GIL); and on one core each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

import loadwise
from loadwise.compat.multiscale import MultiScaleDataset
from loadwise.compat.scale_groups import (
    ScaleGroup,
    StepPeak,
    group_scales_by_memory,
    measure_bytes_per_pixel,
)
from loadwise.testing import make_photo_folder
from loadwise.transforms import IMAGENET_MEAN, IMAGENET_STD, resize_images

SCALES = (224, 448, 672)
BATCH = 32
BUDGET_SHARE = 0.3
MIB = 2**20


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )  # fmt: skip


def build(root: Path, quick: bool) -> Path:
    """Photos packed once (reused across runs); returns the packed dataset's folder."""
    packed = root / ("packed-quick" if quick else "packed")
    if not (packed / "manifest.json").exists():
        per_class = 8 if quick else 16
        folder = make_photo_folder(root / f"photos-{per_class}", classes=8, per_class=per_class,
                                   size=256, seed=0, workers=2)  # fmt: skip
        loadwise.pack(folder.root, packed, progress=False, overwrite=True)
    return packed


# ---- 1. memory of one step, each path in its own interpreter ---------------------------


def legacy_step(packed: Path, model: nn.Module) -> dict[str, Any]:
    dataset = MultiScaleDataset(loadwise.open(packed, "eager"), SCALES, memory_efficient=False)
    loss_fn = nn.CrossEntropyLoss()
    with StepPeak() as peak:
        batch = dataset.get_batch(np.arange(BATCH))
        loss = sum(loss_fn(model(batch[f"image_{s}"]), batch["label"]) for s in SCALES)
        loss.backward()
        del batch, loss
    return {"peak": peak.added}


def efficient_step(
    packed: Path, model: nn.Module, budget: int | None, one_at_a_time: bool
) -> dict[str, Any]:
    dataset = MultiScaleDataset(loadwise.open(packed, "eager"), SCALES)
    loss_fn = nn.CrossEntropyLoss()
    groups, per_pixel = scale_groups(dataset, model, budget, one_at_a_time)
    with StepPeak() as peak:
        batch = dataset.get_batch(np.arange(BATCH))
        for part in dataset.scale_batches(batch, groups):
            (loss_fn(model(part.images), part.labels) * part.weight).backward()
        del batch, part
    return {"peak": peak.added, "groups": [[list(g), g.micro_batch] for g in groups],
            "bytes_per_pixel": per_pixel}  # fmt: skip


def scale_groups(
    dataset: MultiScaleDataset, model: nn.Module, budget: int | None, one_at_a_time: bool
) -> tuple[list[ScaleGroup], float]:
    """Each scale alone (the documents' loop), or grouped to the budget with the step's cost
    per pixel measured on a probe of 4 images at the smallest scale."""
    if one_at_a_time or budget is None:
        return [ScaleGroup((s,), BATCH) for s in SCALES], 0.0
    probe = dataset.get_scale_image(dataset.get_batch(np.arange(4))["base_image"], SCALES[0])
    loss_fn = nn.CrossEntropyLoss()
    labels = torch.zeros(4, dtype=torch.int64)
    per_pixel = measure_bytes_per_pixel(lambda x: loss_fn(model(x), labels).backward(), probe)
    model.zero_grad(set_to_none=True)
    return group_scales_by_memory(SCALES, BATCH, budget, bytes_per_pixel=per_pixel), per_pixel


def probe(args: argparse.Namespace) -> int:
    """One path's step in this interpreter: JSON on stdout, gradients to ``--grads``."""
    torch.set_num_threads(args.threads)
    model = small_cnn()
    if args.probe == "legacy":
        out = legacy_step(args.packed, model)
    else:
        out = efficient_step(args.packed, model, args.budget, args.probe == "one-scale")
    np.savez(args.grads, *[p.grad.numpy() for p in model.parameters()])  # type: ignore[union-attr]
    print(json.dumps(out))
    return 0


def memory_figures(packed: Path, work: Path, threads: int) -> dict[str, Any]:
    def run(path: str, budget: int | None = None) -> dict[str, Any]:
        command = [sys.executable, "-m", "benchmarks.multiscale", "--probe", path,
                   "--packed", str(packed), "--grads", str(work / f"{path}.npz"),
                   "--threads", str(threads)]  # fmt: skip
        command += ["--budget", str(budget)] if budget else []
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    legacy = run("legacy")
    budget = int(BUDGET_SHARE * legacy["peak"])
    efficient = run("efficient", budget)
    one = run("one-scale")
    grads = [np.load(work / f"{p}.npz") for p in ("legacy", "efficient")]
    worst = max(  # per parameter tensor: |a - b| / |a| (Frobenius norms)
        float(np.linalg.norm(a - b) / (np.linalg.norm(a) + 1e-30))
        for a, b in zip(grads[0].values(), grads[1].values(), strict=True)
    )
    return {"legacy": legacy, "efficient": efficient, "one_scale": one, "budget": budget,
            "grad_rel_diff": worst}  # fmt: skip


# ---- 2. throughput of the scale path -------------------------------------------------


def documents_scale(base: torch.Tensor, scale: int) -> torch.Tensor:
    """The documents' ``get_scale_image`` per image: PIL resize, ToTensor, Normalize, stack."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    out = []
    for pixels in base.permute(0, 2, 3, 1).numpy():
        image = Image.fromarray(pixels).resize((scale, scale), Image.Resampling.BILINEAR)
        tensor = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).contiguous()
        tensor = tensor.to(torch.float32).div(255)  # ToTensor
        out.append(tensor.clone().sub_(mean).div_(std))  # Normalize (not in place)
    return torch.stack(out)


class Paths:
    """The three ways to a batch's scaled images, over the same data and indices."""

    def __init__(self, packed: Path, groups: list[ScaleGroup]) -> None:
        data = loadwise.open(packed, "eager")
        self.efficient = MultiScaleDataset(data, SCALES)
        self.legacy = MultiScaleDataset(data, SCALES, memory_efficient=False)
        self.groups, self.n = groups, len(data)
        self.model, self.loss_fn = small_cnn(), nn.CrossEntropyLoss()
        self.batch = 0

    def _indices(self) -> np.ndarray:
        self.batch += 1
        return np.random.default_rng(self.batch).choice(self.n, BATCH, replace=False)

    def run_efficient(self, train: bool = False) -> None:
        batch = self.efficient.get_batch(self._indices())
        for part in self.efficient.scale_batches(batch, self.groups):
            if train:
                (self.loss_fn(self.model(part.images), part.labels) * part.weight).backward()

    def run_legacy(self, train: bool = False) -> None:
        batch = self.legacy.get_batch(self._indices())
        if train:
            images = [batch[f"image_{s}"] for s in SCALES]
            sum(self.loss_fn(self.model(x), batch["label"]) for x in images).backward()

    def run_documents(self, train: bool = False) -> None:
        batch = self.efficient.get_batch(self._indices())
        for scale in SCALES:
            images = documents_scale(batch["base_image"], scale)
            if train:
                self.loss_fn(self.model(images), batch["label"]).backward()


def timed(fn: Callable[[], object], seconds: float) -> float:
    """Batches per second over at least one batch and ``seconds``."""
    started, count = time.perf_counter(), 0
    while count == 0 or time.perf_counter() - started < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - started)


def interleaved(
    contenders: dict[str, Callable[[], object]], rounds: int, seconds: float
) -> dict[str, list[float]]:
    """Rates per round, every contender once a round, the order reversed every other round."""
    names = list(contenders)
    for name in names:  # warm-up
        contenders[name]()
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            rates[name].append(timed(contenders[name], seconds))
    return rates


def median_ratio(rates: dict[str, list[float]], top: str, bottom: str) -> tuple[float, list[float]]:
    per_round = [a / b for a, b in zip(rates[top], rates[bottom], strict=True)]
    return statistics.median(per_round), per_round


# ---- 3. batch resize vs PIL ----------------------------------------------------------


def resize_figures(packed: Path, rounds: int, threads: int) -> dict[str, Any]:
    data = loadwise.open(packed, "eager")
    base = data.get_batch(np.arange(BATCH))["image"]
    out: dict[str, Any] = {}
    for source, target in ((224, 448), (672, 224)):
        images = resize_images(base, source).contiguous(memory_format=torch.channels_last)
        pil = [Image.fromarray(x) for x in images.permute(0, 2, 3, 1).numpy()]
        for cores in sorted({1, threads}):
            for layout, batch in (("channels-last", images), ("NCHW", images.contiguous())):
                torch.set_num_threads(cores)
                rates = _resize_rates(batch, pil, target, cores, rounds)
                torch.set_num_threads(threads)
                ratio, per_round = median_ratio(rates, "loadwise", "PIL")
                out[f"{source}->{target} {layout}, {cores} core(s)"] = {
                    "ours_ms": 1e3 / statistics.median(rates["loadwise"]),
                    "pil_ms": 1e3 / statistics.median(rates["PIL"]), "ratio": ratio,
                    "rounds": per_round, "target": cores == threads and layout != "NCHW",
                }  # fmt: skip
    return out


def _resize_rates(
    batch: torch.Tensor, pil: list[Image.Image], side: int, cores: int, rounds: int
) -> dict[str, list[float]]:
    """The batch in one call vs the same images one at a time on a thread per core."""
    with ThreadPoolExecutor(cores) as pool:

        def one(image: Image.Image) -> Image.Image:
            return image.resize((side, side), Image.Resampling.BILINEAR)

        def ours() -> None:
            resize_images(batch, side)

        def per_image() -> None:
            list(pool.map(one, pil))

        return interleaved({"loadwise": ours, "PIL": per_image}, rounds, 0.3)


# ---- the run -------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer photos and rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--root", type=Path, default=Path(tempfile.gettempdir()) / "loadwise-bench-multiscale"
    )
    parser.add_argument(
        "--probe", choices=["legacy", "efficient", "one-scale"], help=argparse.SUPPRESS
    )
    parser.add_argument("--packed", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--grads", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        return probe(args)
    rounds = args.rounds or (3 if args.quick else 5)
    threads = args.threads
    torch.set_num_threads(threads)
    args.root.mkdir(parents=True, exist_ok=True)
    packed = build(args.root, args.quick)
    print(f"multi-scale benchmark: scales {SCALES}, batch {BATCH}, {threads} cores, torch "
          f"{torch.__version__}; load average {os.getloadavg()[0]:.2f} at start")  # fmt: skip

    memory = memory_figures(packed, args.root, threads)
    groups = [ScaleGroup(tuple(s), m) for s, m in memory["efficient"]["groups"]]
    paths = Paths(packed, groups)
    data_rates: dict[int, dict[str, list[float]]] = {}
    for cores in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(cores)
        contenders: dict[str, Callable[[], object]] = {
            "efficient": paths.run_efficient, "legacy": paths.run_legacy,
            "documents": paths.run_documents,
        }  # fmt: skip
        data_rates[cores] = interleaved(contenders, rounds, 1.0)
    torch.set_num_threads(threads)
    step_rates = interleaved({"efficient": lambda: paths.run_efficient(True),
                              "legacy": lambda: paths.run_legacy(True)}, rounds, 0.0)  # fmt: skip
    resize = resize_figures(packed, rounds, threads)
    report(memory, data_rates, step_rates, resize, threads)
    print(f"load average {os.getloadavg()[0]:.2f} at the end ({rounds} rounds)")
    return 0


def report(memory: dict[str, Any], data: dict[int, dict[str, list[float]]],
           step: dict[str, list[float]], resize: dict[str, Any], threads: int) -> None:  # fmt: skip
    legacy, efficient, one = (memory[k]["peak"] / MIB for k in ("legacy", "efficient", "one_scale"))
    print("\n1. peak memory of one training step (process peak over the step, MiB)")
    print(f"   legacy (every scale held)       {legacy:8.0f}")
    print(f"   one scale at a time (documents) {one:8.0f}   {one / legacy:.2f}x legacy")
    print(f"   memory-efficient, grouped       {efficient:8.0f}   {efficient / legacy:.2f}x legacy"
          f"   budget {memory['budget'] / MIB:.0f} MiB; groups {memory['efficient']['groups']} at "
          f"{memory['efficient']['bytes_per_pixel']:.0f} bytes/pixel")  # fmt: skip
    print(f"   gradients vs legacy: largest |a - b| / |a| over the parameters "
          f"{memory['grad_rel_diff']:.1e}")  # fmt: skip
    print("\n2. throughput of the scale path (batches/s, median of rounds)")
    ratios = {}
    for cores, rates in data.items():
        figures = ", ".join(f"{n} {statistics.median(r):.2f}" for n, r in rates.items())
        ratios[cores] = (median_ratio(rates, "efficient", "legacy"),
                         median_ratio(rates, "efficient", "documents"))  # fmt: skip
        (leg, leg_rounds), (doc, doc_rounds) = ratios[cores]
        print(f"   {cores} core(s): {figures}; efficient / legacy {leg:.2f}x "
              f"{_rounded(leg_rounds)}, / documents {doc:.2f}x {_rounded(doc_rounds)}")  # fmt: skip
    step_ratio, step_rounds = median_ratio(step, "efficient", "legacy")
    eff_step, leg_step = statistics.median(step["efficient"]), statistics.median(step["legacy"])
    print(f"   with the CNN step ({threads} cores): efficient {eff_step:.3f}, legacy "
          f"{leg_step:.3f} steps/s, {step_ratio:.2f}x {_rounded(step_rounds)}")  # fmt: skip
    print("\n3. batch resize, uint8, batch 32 (ms a batch, median of rounds)")
    for name, row in resize.items():
        print(f"   {name:<34} loadwise {row['ours_ms']:6.1f}  PIL per image {row['pil_ms']:6.1f}"
              f"  {row['ratio']:.2f}x")  # fmt: skip
    print(f"\ntargets (median of per-round ratios; {threads} cores unless said)")
    _target("memory-efficient step peak <= 0.3x legacy", efficient / legacy,
            efficient <= BUDGET_SHARE * legacy)  # fmt: skip
    _target("gradients equal legacy (float32: |a - b| / |a| < 1e-3)", memory["grad_rel_diff"],
            memory["grad_rel_diff"] < 1e-3)  # fmt: skip
    (leg, _), (doc, _) = ratios[threads]
    _target("scale path throughput >= 1.0x legacy", leg, leg >= 1.0)
    _target("scale path throughput >= 5x the documents' per-image loop", doc, doc >= 5.0)
    for name, row in resize.items():
        if row["target"]:
            _target(f"batch resize {name} >= 3x PIL", row["ratio"], row["ratio"] >= 3.0)


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 2) for v in values]


def _target(name: str, value: float, met: bool) -> None:
    print(f"   {'PASS' if met else 'FAIL'}  {name}: {value:.3g}")


if __name__ == "__main__":
    sys.exit(main())
