"""Issue 18: a shard truncated while a lazy (or cached) dataset has it mapped is an
``IntegrityError`` naming the shard, not a process killed by SIGBUS; a SIGBUS anywhere else
still takes its usual course.

Each case runs in a child process, so a regression fails the test instead of killing pytest.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from loadwise.access import sigbus

pytestmark = pytest.mark.skipif(not sigbus.SUPPORTED, reason="SIGBUS handling is Linux-only")

SETUP = """
import os, tempfile
from pathlib import Path
import numpy as np
import loadwise
from loadwise.errors import IntegrityError
from loadwise.format.reader import load_manifest
root = Path(tempfile.mkdtemp()) / "d"
rows = np.repeat(np.arange(3000, dtype=np.int64)[:, None], 64, axis=1)  # 512 B a row
loadwise.pack({"x": rows, "s": [f"t{i}" * 20 for i in range(3000)]}, root,
              shard_bytes=400_000, progress=False)
names = [s.name for s in load_manifest(root).shards]
"""


def _run(body: str) -> subprocess.CompletedProcess[str]:
    code = SETUP + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_a_truncated_shard_under_a_mapping_is_an_integrity_error() -> None:
    done = _run("""
        import shutil
        for mode in ("lazy", "cached"):
            for wanted in ([600], np.arange(100, 700)):  # numpy's gather, torch's threads
                copy = Path(shutil.copytree(root, root.with_name(f"{mode}{len(wanted)}")))
                data = loadwise.open(copy, mode, verify="never")
                data.get_batch(np.arange(0, 3000, 5))  # every shard mapped
                os.truncate(copy / names[0], 4096)
                for attempt in range(2):  # the faulting batch, then a later one
                    try:
                        data.get_batch(wanted)
                    except IntegrityError as exc:
                        assert names[0] in str(exc), exc
                        assert "truncated while the dataset was open" in str(exc), exc
                    else:
                        raise SystemExit(f"{mode}: served a truncated shard")
                assert data.get_batch([2999])["x"][0, 0] == 2999  # other shards still read
                data.close()
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.split()[-1] == "ok", done.stderr[-2000:]


def test_in_a_dataloader_worker_the_error_reaches_the_main_process() -> None:
    done = _run("""
        data = loadwise.open(root, "lazy", verify="never")
        loader = loadwise.loader(data, 64, shuffle=False, num_workers=2)
        batches = iter(loader)
        next(batches)  # workers started and mapped shard 0
        os.truncate(root / names[0], 4096)
        try:
            for _ in batches:
                pass
        except IntegrityError as exc:
            assert names[0] in str(exc), exc
            print("ok")
    """)
    assert done.returncode == 0 and done.stdout.split()[-1] == "ok", done.stderr[-2000:]


def test_a_sigbus_outside_our_mappings_is_not_swallowed() -> None:
    done = _run("""
        import mmap
        data = loadwise.open(root, "lazy")
        data.get_batch([0])  # our handler installed
        other = Path(tempfile.mkdtemp()) / "other"
        other.write_bytes(b"x" * 65536)
        with open(other, "rb") as handle:
            view = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        os.truncate(other, 0)
        print(view[40000])  # not a shard: the process dies as it always would
    """)
    assert done.returncode == -signal.SIGBUS
