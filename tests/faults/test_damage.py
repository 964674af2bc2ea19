"""Random damage to shards and manifests: detected before a damaged sample is returned.

Bit flips and truncations land anywhere in any file of a packed dataset. For each, reading
every sample in a random mode either raises a ``LoadwiseError`` naming the damaged file or
returns only intact samples (a flip in bytes no sample uses, such as Arrow metadata), and
``verify`` names the file every time. ``make test`` runs a sample; ``make test-slow`` runs
1,000 flips and 100 truncations.
"""

from __future__ import annotations

import os
import random
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import loadwise
from loadwise.errors import LoadwiseError
from loadwise.format.spec import MANIFEST_NAME
from loadwise.format.verify import verify

MODES = ("eager", "lazy", "cached", "streaming")
BATCH = 37


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(11)
    n = 240
    columns = {
        "image": rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8),
        "label": np.arange(n) % 5,
        "name": [f"item-{i}" * (i % 3 + 1) for i in range(n)],
        "blob": [bytes(rng.integers(0, 256, i % 40, dtype=np.uint8)) for i in range(n)],
    }
    dest = tmp_path_factory.mktemp("damage") / "d"
    loadwise.pack(columns, dest, shard_bytes=20_000, block_bytes=2048, progress=False)
    return dest


@pytest.fixture(scope="module")
def truth(pristine: Path) -> list[dict[str, object]]:
    with loadwise.open(pristine, "eager") as data:
        return [
            data.get_batch(np.arange(i, min(i + BATCH, len(data)))) for i in range(0, 240, BATCH)
        ]


def _same(a: dict[str, object], b: dict[str, object]) -> bool:
    for key, value in a.items():
        other = b[key]
        if isinstance(value, torch.Tensor):
            if not torch.equal(value, other):  # type: ignore[arg-type]
                return False
        elif value != other:
            return False
    return True


def _read_all(root: Path, mode: str, truth: list[dict[str, object]]) -> None:
    """Read every batch; a returned batch that differs from the truth fails the test."""
    with loadwise.open(root, mode) as data:
        for i, expected in enumerate(truth):
            got = data.get_batch(np.arange(i * BATCH, i * BATCH + len(expected["label"])))
            assert _same(expected, got), f"{mode}: batch {i} returned damaged data"


def _damage(root: Path, rng: random.Random, kind: str) -> tuple[Path, bytes]:
    files = sorted(p for p in root.iterdir() if p.is_file())
    target = rng.choice(files)
    original = target.read_bytes()
    data = bytearray(original)
    if kind == "flip":
        at = rng.randrange(len(data))
        data[at] ^= 1 << rng.randrange(8)
    else:
        del data[rng.randrange(len(data)) :]
    target.write_bytes(bytes(data))
    return target, original


def run_trials(
    root: Path, truth: list[dict[str, object]], kind: str, count: int, seed: int
) -> Counter[str]:
    """Damage, check, restore, ``count`` times; returns how each trial ended."""
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    for _ in range(count):
        target, original = _damage(root, rng, kind)
        try:
            try:
                report = verify(root)
                assert not report.ok and target.name in report.problems[0].shard, target.name
            except LoadwiseError as exc:  # a damaged manifest: verify cannot start
                assert target.name == MANIFEST_NAME and MANIFEST_NAME in str(exc), str(exc)
            mode = rng.choice(MODES)
            try:
                _read_all(root, mode, truth)
                outcomes["read intact (damage outside sample bytes)"] += 1
            except LoadwiseError as exc:
                assert target.name in str(exc), f"{mode}: error does not name {target.name}: {exc}"
                outcomes["raised naming the file"] += 1
        finally:
            target.write_bytes(original)
    return outcomes


def test_bit_flips_and_truncations(
    pristine: Path, truth: list[dict[str, object]], tmp_path: Path
) -> None:
    root = Path(shutil.copytree(pristine, tmp_path / "d"))
    flips = run_trials(root, truth, "flip", 150, seed=1)
    cuts = run_trials(root, truth, "truncate", 30, seed=2)
    assert flips["raised naming the file"] > 100 and sum(cuts.values()) == 30
    assert cuts["raised naming the file"] == 30  # a short file never opens


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_1000_bit_flips_and_100_truncations(
    pristine: Path, truth: list[dict[str, object]], tmp_path: Path
) -> None:
    root = Path(shutil.copytree(pristine, tmp_path / "d"))
    flips = run_trials(root, truth, "flip", int(os.environ.get("LOADWISE_FLIPS", "1000")), 7)
    cuts = run_trials(root, truth, "truncate", 100, 8)
    print(f"bit flips: {dict(flips)}; truncations: {dict(cuts)}")  # noqa: T201
    assert cuts["raised naming the file"] == 100
