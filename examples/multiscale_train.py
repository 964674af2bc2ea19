"""Train a small CNN at three scales, memory-efficient vs legacy: time per epoch, peak memory.

python examples/multiscale_train.py [--scales 96 160 224] [--epochs 2] [--budget-share 0.3]

Photos: ``loadwise.testing.make_photo_folder`` (real photo crops, 256x256 JPEG), packed once
under ``demo-data/`` and opened eager. Each mode runs in its own interpreter (so what one
leaves in memory does not flatter the other), from the same initial weights, over the same
seeded order and augmentation (crop + flip keyed by ``(seed, epoch, index)``):

- legacy: ``MultiScaleDataset(..., memory_efficient=False)``: every item carries every
  scale; the step sums the scales' losses and calls backward once.
- memory-efficient: items carry the base image; ``scale_batches`` makes each scale's images
  group by group, in micro-batches where a scale does not fit a budget of
  ``--budget-share`` x the legacy step's peak (``group_scales_by_memory`` with the step's
  cost per pixel measured by ``measure_bytes_per_pixel``), accumulating gradients.

Peak memory is the process's peak resident size over each epoch above its resident size
before the first (model and data loaded).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
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

MIB = 2**20


def small_cnn(classes: int) -> nn.Module:
    """No batch norm: its statistics over a micro-batch would differ from the whole batch's."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes),
    )  # fmt: skip


def packed_photos(root: Path, classes: int, per_class: int) -> Path:
    packed = root / f"multiscale-{classes}x{per_class}.loadwise"
    if not (packed / "manifest.json").exists():
        photos = root / f"multiscale-photos-{classes}x{per_class}"
        folder = make_photo_folder(photos, classes=classes, per_class=per_class, workers=2)
        loadwise.pack(folder.root, packed, progress=False, overwrite=True)
    return packed


def train(args: argparse.Namespace) -> dict[str, object]:
    """One mode's epochs in this interpreter: seconds, peak MiB and loss per epoch."""
    data = loadwise.open(args.packed, "eager")
    classes = len(data.categories("label"))
    efficient = args.mode == "efficient"
    dataset = MultiScaleDataset(data, args.scales, augment=True, memory_efficient=efficient)
    model, loss_fn = small_cnn(classes), nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = loadwise.loader(dataset, args.batch_size, seed=0)
    groups = None
    if efficient:
        groups = _groups(dataset, model, loss_fn, args)
    epochs = []
    with StepPeak() as before:  # resident size before training: the epochs' peaks count from it
        pass
    for _ in range(args.epochs):
        started, total, seen = time.perf_counter(), 0.0, 0
        with StepPeak() as peak:
            for batch in loader:
                optimizer.zero_grad(set_to_none=True)
                if efficient:
                    for part in dataset.scale_batches(batch, groups):
                        loss = loss_fn(model(part.images), part.labels) * part.weight
                        loss.backward()
                        total += loss.item() * len(batch["label"])
                else:
                    images = [batch[f"image_{s}"] for s in args.scales]
                    loss = sum(loss_fn(model(x), batch["label"]) for x in images)
                    loss.backward()
                    total += loss.item() * len(batch["label"])
                optimizer.step()
                seen += len(batch["label"])
        added = peak.peak - before.start
        epochs.append({"seconds": time.perf_counter() - started, "peak_mib": added / MIB,
                       "loss": total / seen / len(args.scales)})  # fmt: skip
    out: dict[str, object] = {"epochs": epochs}
    if groups is not None:
        out["groups"] = [[list(g), g.micro_batch] for g in groups]
    return out


def _groups(
    dataset: MultiScaleDataset, model: nn.Module, loss_fn: nn.Module, args: argparse.Namespace
) -> list[ScaleGroup]:
    """Scale groups for the budget, from the step's cost per pixel on a probe of 4 images."""
    base = dataset.get_batch(np.arange(4))["base_image"]
    probe = dataset.get_scale_image(base, args.scales[0], index=np.arange(4), epoch=0)
    labels = torch.zeros(4, dtype=torch.int64)
    per_pixel = measure_bytes_per_pixel(lambda x: loss_fn(model(x), labels).backward(), probe)
    model.zero_grad(set_to_none=True)
    budget = int(args.budget_mib * MIB)
    return group_scales_by_memory(args.scales, args.batch_size, budget, bytes_per_pixel=per_pixel)


def run_mode(mode: str, args: argparse.Namespace, packed: Path, budget_mib: float) -> dict:
    command = [sys.executable, __file__, "--mode", mode, "--packed", str(packed),
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--budget-mib", str(budget_mib), "--scales", *map(str, args.scales)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the {mode} run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[96, 160, 224])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--per-class", type=int, default=24)
    parser.add_argument("--budget-share", type=float, default=0.3)
    parser.add_argument("--root", type=Path, default=Path("demo-data"))
    parser.add_argument("--mode", choices=["legacy", "efficient"], help=argparse.SUPPRESS)
    parser.add_argument("--packed", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--budget-mib", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(train(args)))
        return 0
    packed = packed_photos(args.root, args.classes, args.per_class)
    print(f"photos: {args.classes} classes x {args.per_class}, scales {args.scales}, batch "
          f"{args.batch_size}, {args.epochs} epochs")  # fmt: skip
    legacy = run_mode("legacy", args, packed, 0.0)
    budget = args.budget_share * max(e["peak_mib"] for e in legacy["epochs"])
    efficient = run_mode("efficient", args, packed, budget)
    print(f"memory-efficient groups for a budget of {budget:.0f} MiB: {efficient['groups']}")
    print(f"{'mode':<18}{'epoch':>6}{'seconds':>10}{'peak MiB':>10}{'loss':>8}")
    for name, result in (("legacy", legacy), ("memory-efficient", efficient)):
        for number, epoch in enumerate(result["epochs"]):
            print(f"{name:<18}{number:>6}{epoch['seconds']:>10.1f}{epoch['peak_mib']:>10.0f}"
                  f"{epoch['loss']:>8.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
