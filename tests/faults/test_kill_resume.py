"""Kill a training loop (its main process, or one DataLoader worker) and resume it.

Each trial runs ``loop.py`` in real processes (two ranks over gloo for world size 2),
SIGKILLs at a random step, resumes from the last checkpoint and checks that the samples
consumed before the checkpoint plus those after the resume are exactly the uninterrupted
order: no sample twice, none lost. ``make test`` runs a few; ``make test-slow`` runs 100.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pytest

import loadwise
from loadwise.sampling.order import epoch_order, partition

LOOP = Path(__file__).with_name("loop.py")
EPOCHS, BATCH = 2, 16


@dataclass(frozen=True)
class Trial:
    mode: str
    workers: int
    shuffle: bool
    world: int
    kill: str  # "main" or "worker"
    seed: int


def _expected(data_path: Path, trial: Trial, rank: int) -> list[int]:
    """The uninterrupted order of this rank, from the pure order functions."""
    data = loadwise.open(data_path, trial.mode)
    out: list[int] = []
    for epoch in range(EPOCHS):
        order_of = getattr(data, "order", None)
        order = (
            order_of(epoch, trial.seed, trial.shuffle)
            if callable(order_of)
            else epoch_order(len(data), trial.seed, epoch, trial.shuffle)
        )
        out.extend(partition(np.asarray(order), rank, trial.world).tolist())
    data.close()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch(data: Path, trial: Trial, work: Path, port: int) -> list[subprocess.Popen[str]]:
    procs = []
    for rank in range(trial.world):
        cmd = [
            sys.executable, str(LOOP), "--data", str(data), "--mode", trial.mode,
            "--workers", str(trial.workers), "--shuffle", str(int(trial.shuffle)),
            "--seed", str(trial.seed), "--batch-size", str(BATCH), "--epochs", str(EPOCHS),
            "--rank", str(rank), "--world", str(trial.world), "--port", str(port),
            "--checkpoint", str(work / f"ckpt-{rank}.json"),
            "--done", str(work / f"done-{rank}.json"),
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    return procs


def _wait_for_step(proc: subprocess.Popen[str], step: int, deadline: float) -> bool:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            return False
        if line.strip() == f"step {step}":
            return True
    return False


def _kill(procs: list[subprocess.Popen[str]], trial: Trial) -> None:
    victim = procs[0]
    if trial.kill == "worker":
        workers = psutil.Process(victim.pid).children()
        assert workers, "the loop has no DataLoader workers to kill"
        workers[0].send_signal(signal.SIGKILL)
        _, err = victim.communicate(timeout=60)
    else:
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)
    _reap(procs)  # the other rank, as torchrun would
    if trial.kill == "worker":
        assert victim.returncode == 3, err
        assert "WorkerError" in err and "worker" in err and "batch" in err, err


def run_trial(data: Path, trial: Trial, work: Path, rng: random.Random) -> None:
    work.mkdir(parents=True)
    steps_per_epoch = -(-len(_expected(data, trial, 0)) // EPOCHS // BATCH)
    kill_at = rng.randint(1, EPOCHS * steps_per_epoch - 2)
    procs = _launch(data, trial, work, _free_port())
    try:
        reached = _wait_for_step(procs[0], kill_at, time.monotonic() + 90)
        assert reached, f"{trial}: step {kill_at} never came"
        _kill(procs, trial)
        before = {r: json.loads((work / f"ckpt-{r}.json").read_text()) for r in range(trial.world)}
        procs = _launch(data, trial, work, _free_port())
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"{trial}: resume failed: {err}"
    finally:
        _reap(procs)
    for rank in range(trial.world):
        done = json.loads((work / f"done-{rank}.json").read_text())
        assert len(before[rank]["consumed"]) > 0
        assert done == _expected(data, trial, rank), f"{trial} rank {rank}: resumed order differs"
    _assert_no_orphans(work)


def _reap(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        if proc.returncode is None or not (proc.stdout is None or proc.stdout.closed):
            proc.communicate(timeout=30)


def _assert_no_orphans(work: Path, patience: float = 30.0) -> None:
    """No process of this trial (loops or their DataLoader workers) outlives it."""
    deadline = time.monotonic() + patience
    while True:
        left = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if str(work) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
                left.append(proc.pid)
        if not left:
            return
        assert time.monotonic() < deadline, f"orphans left: {left}"
        time.sleep(0.2)


def _trials(count: int, seed: int) -> list[Trial]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        workers = rng.choice([0, 2])
        out.append(
            Trial(
                mode=rng.choice(["eager", "lazy", "streaming"]),
                workers=workers,
                shuffle=rng.choice([True, False]),
                world=rng.choice([1, 2]),
                kill="worker" if workers and rng.random() < 0.4 else "main",
                seed=i,
            )
        )
    return out


FAST = [
    Trial("lazy", 0, True, 1, "main", 0),
    Trial("eager", 2, True, 1, "worker", 1),
    Trial("streaming", 0, False, 2, "main", 2),
]


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    dest = tmp_path_factory.mktemp("kill") / "data.loadwise"
    columns = {"x": rng.integers(0, 255, (203, 8, 8), dtype=np.uint8), "y": np.arange(203)}
    loadwise.pack(columns, dest, shard_bytes=3_000, progress=False)
    return dest


@pytest.mark.timeout(300)
@pytest.mark.parametrize("trial", FAST, ids=str)
def test_kill_and_resume(packed: Path, tmp_path: Path, trial: Trial) -> None:
    run_trial(packed, trial, tmp_path / "run", random.Random(trial.seed))


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_kill_and_resume_100_trials(packed: Path, tmp_path: Path) -> None:
    trials = _trials(int(os.environ.get("LOADWISE_TRIALS", "100")), seed=2026)
    failures = []
    for number, trial in enumerate(trials):
        try:
            run_trial(packed, trial, tmp_path / f"trial-{number}", random.Random(number))
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            failures.append(f"trial {number} {trial}: {exc}")
    print(f"resume: {len(trials) - len(failures)}/{len(trials)} exact")  # noqa: T201
    assert not failures, "\n".join(failures)
