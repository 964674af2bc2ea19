"""Kill ``pack`` at random points; a resumed pack must equal an uninterrupted one byte for byte.

After each kill the destination holds the previous complete dataset (or nothing): never a
half dataset that opens. ``make test`` runs a few kills; ``make test-slow`` runs 50.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import loadwise
from loadwise.errors import FormatError
from loadwise.format.reader import load_manifest
from loadwise.format.verify import verify
from loadwise.testing import make_omniglot_tree

PACK = """
import sys, loadwise
loadwise.pack(sys.argv[1], sys.argv[2], shard_bytes=60_000, workers=int(sys.argv[3]),
              overwrite=True, resume=True, progress=False)
"""


def _digests(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("packkill") / "tree"
    make_omniglot_tree(root, alphabets=4, characters=5, drawings=12, seed=3)
    return root


@pytest.fixture(scope="module")
def reference(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    dest = tmp_path_factory.mktemp("ref") / "ref.loadwise"
    loadwise.pack(tree, dest, shard_bytes=60_000, progress=False)
    return _digests(dest)


def _assert_no_orphans(dest: Path, patience: float = 10.0) -> None:
    """The killed pack's decode workers exit too (they would otherwise idle forever)."""
    deadline = time.monotonic() + patience
    while True:
        left = [
            p.pid
            for p in psutil.process_iter(["cmdline", "status"])
            if str(dest) in " ".join(p.info["cmdline"] or [])
            and p.info["status"] != psutil.STATUS_ZOMBIE
        ]
        if not left:
            return
        assert time.monotonic() < deadline, f"pack workers orphaned: {left}"
        time.sleep(0.1)


def kill_and_resume(tree: Path, dest: Path, rng: random.Random) -> None:
    """One trial: start a pack, SIGKILL it at a random moment, check, then resume it."""
    workers = rng.choice([1, 2])
    proc = subprocess.Popen([sys.executable, "-c", PACK, str(tree), str(dest), str(workers)])
    deadline = time.monotonic() + 60
    while not list(dest.parent.glob(f".{dest.name}.partial-*")) and proc.poll() is None:
        assert time.monotonic() < deadline, "pack never started"
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 1.2))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    _assert_no_orphans(dest)
    if dest.exists():  # the previous dataset, or the new one if published before the kill
        assert verify(dest).ok
    else:
        with pytest.raises(FormatError):
            loadwise.open(dest, "lazy")
    resumed = subprocess.run([sys.executable, "-c", PACK, str(tree), str(dest), str(workers)])
    assert resumed.returncode == 0


def test_resumed_pack_is_identical(tree: Path, reference: dict[str, str], tmp_path: Path) -> None:
    dest = tmp_path / "d.loadwise"
    for trial in range(3):
        kill_and_resume(tree, dest, random.Random(trial))
        assert _digests(dest) == reference, f"trial {trial}: resumed pack differs"
        assert not list(tmp_path.glob(".d.loadwise.*")), "staging left behind"


def test_resume_in_process_reuses_finished_shards(
    tree: Path, reference: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "d.loadwise"
    module = sys.modules["loadwise.packing.partition"]  # where pack writes shards
    original, calls = module.ShardWriter.add, []

    def interrupted_add(self, sample, item):  # type: ignore[no-untyped-def]
        calls.append(item)
        if len(calls) == 40:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-pack
        return original(self, sample, item)

    monkeypatch.setattr(module.ShardWriter, "add", interrupted_add)
    with pytest.raises(KeyboardInterrupt):
        loadwise.pack(tree, dest, shard_bytes=60_000, resume=True, progress=False)
    monkeypatch.setattr(module.ShardWriter, "add", original)
    staging = list(tmp_path.glob(".d.loadwise.partial-*"))
    assert len(staging) == 1 and (staging[0] / "progress.json").is_file()
    assert not dest.exists()
    # the staging belongs to this (live) process, so a resume from here must not adopt it
    new_name = staging[0].with_name(".d.loadwise.partial-999999999-00000000")
    staging[0].rename(new_name)
    kept = {p.name: p.stat().st_mtime_ns for p in new_name.glob("*.arrow")}
    assert kept
    loadwise.pack(tree, dest, shard_bytes=60_000, resume=True, progress=False)
    assert _digests(dest) == reference
    generation = load_manifest(dest).generation  # in front of every published shard's name
    reused = {n: (dest / f"{generation}-{n}").stat().st_mtime_ns for n in kept}
    assert reused == kept  # reused (only renamed), not rewritten
    assert os.path.exists(dest / "manifest.json") and not (dest / "progress.json").exists()


def test_resume_refuses_sources_without_a_fingerprint(tmp_path: Path) -> None:
    source = loadwise.sources.IterableSource(iter([{"x": 1}]), length=1)
    with pytest.raises(loadwise.errors.ConfigError, match="fingerprint"):
        loadwise.pack(source, tmp_path / "d", resume=True, progress=False)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_pack_killed_50_times(tree: Path, reference: dict[str, str], tmp_path: Path) -> None:
    count = int(os.environ.get("LOADWISE_PACK_KILLS", "50"))
    dest = tmp_path / "d.loadwise"
    identical = 0
    for trial in range(count):
        kill_and_resume(tree, dest, random.Random(1000 + trial))
        identical += _digests(dest) == reference
    print(f"pack kills: {identical}/{count} resumed byte-identical")  # noqa: T201
    assert identical == count
