"""Elastic resume and a dead rank with real processes: ``torchrun`` on gloo (CPU), 127.0.0.1.

An epoch runs on 2 ranks, one is killed mid-epoch after a checkpoint; the run resumes on 3
ranks from every rank's saved state and finishes the epoch (and the next). Every sample of
each epoch is seen once, except the pads that equal shares need on the last world (as in
any epoch on that many ranks: ``pad_ranks``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

LOOP = Path(__file__).with_name("rank_loop.py")
ROOT = Path(__file__).resolve().parents[3]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun(nproc: int, data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``torchrun --nproc_per_node=nproc rank_loop.py`` on 127.0.0.1, to its end."""
    command = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
        "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={_port()}", "--max_restarts=0",
        str(LOOP), "--data", str(data), "--out", str(out), *extra,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)


def seen_by_epoch(out: Path, run: str, upto: int | None = None) -> dict[int, Counter[int]]:
    """Samples each epoch yielded in ``run`` (steps after ``upto`` are not counted: they
    came after the last checkpoint, so a resume serves them again)."""
    seen: dict[int, Counter[int]] = {}
    for log in out.glob(f"seen-{run}-*.jsonl"):
        for line in log.read_text().splitlines():
            step, epoch, indices = json.loads(line)
            if upto is None or step <= upto:
                seen.setdefault(epoch, Counter()).update(indices)
    return seen


@pytest.mark.timeout(300)
def test_two_ranks_killed_mid_epoch_resume_on_three(arrays_packed: Path, tmp_path: Path) -> None:
    first = torchrun(2, arrays_packed, tmp_path, "--tag", "a", "--kill-at", "7", "--epochs", "2")
    assert first.returncode != 0 and "SIGKILL" in first.stderr, first.stderr[-3000:]
    checkpoint_step = 7
    assert max(seen_by_epoch(tmp_path, "a")[0].values()) == 1  # it did run, disjoint shares
    second = torchrun(3, arrays_packed, tmp_path, "--tag", "b", "--epochs", "2")
    assert second.returncode == 0, second.stderr[-3000:]
    before = seen_by_epoch(tmp_path, "a", upto=checkpoint_step)
    after = seen_by_epoch(tmp_path, "b")
    epoch0 = before[0] + after[0]
    assert set(epoch0) == set(range(300))  # none lost
    left = 300 - 2 * 8 * checkpoint_step  # samples the 3 new ranks shared
    assert sum(epoch0.values()) - 300 == -left % 3  # repeats: only the last world's pads
    assert set(after[1]) == set(range(300)) and sum(after[1].values()) == 300  # 300 % 3 == 0


@pytest.mark.timeout(120)
def test_a_dead_rank_is_a_clear_error_within_the_timeout(
    arrays_packed: Path, tmp_path: Path
) -> None:
    """Rank 1 dies mid-epoch; rank 0, gathering the states, gets ``RankError`` in time.
    Plain processes with torchrun's environment: torchrun would kill rank 0 at once."""
    port, procs = _port(), []
    for rank in range(2):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
               "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}  # fmt: skip
        procs.append(subprocess.Popen(
            [sys.executable, str(LOOP), "--data", str(arrays_packed), "--out", str(tmp_path),
             "--die-at", "3", "--timeout", "5"],
            env=env, stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
    started = time.monotonic()
    try:
        _, err = procs[0].communicate(timeout=90)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
    assert procs[0].returncode == 3, err[-3000:]
    assert "RankError" in err and "restart the job" in err
    assert time.monotonic() - started < 60
