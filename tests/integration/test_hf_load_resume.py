"""A load killed midway (SIGKILL, in a child process) continues where it stopped: the next
run keeps the finished shards and asks the server only for what they do not hold."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tests.media import jpeg

from loadwise.testing.server import MediaServer

datasets = pytest.importorskip("datasets")
COUNT, SHARD = 240, 31_000  # 32 x 32 RGB + caption: ~10 samples a shard

LOAD = """
import sys
import datasets
import loadwise
from loadwise.compat import hf_cache
from loadwise.sources import FetchOptions
hf_cache.SHARD_BYTES = int(sys.argv[2])
urls = [f"{sys.argv[1]}/files/{i}.jpg" for i in range(int(sys.argv[3]))]
rows = datasets.Dataset.from_dict({"url": urls, "caption": [f"c{i}" for i in range(len(urls))]})
loadwise.InMemoryImageTextDataset(rows, image_size=32, workers=1, fetch=FetchOptions(in_flight=4))
"""


def _progress(cache: Path) -> dict[str, object] | None:
    for found in (cache / "hf").glob(".*.partial-*/progress.json"):
        try:
            return json.loads(found.read_text())
        except (OSError, ValueError):
            return None
    return None


@pytest.mark.timeout(180)
def test_a_killed_load_resumes_without_fetching_finished_shards_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "LOADWISE_CACHE": str(cache)}
    with MediaServer({f"{i}.jpg": jpeg(i) for i in range(COUNT)}, latency=0.02) as server:
        base = server.url("").rstrip("/")
        child = subprocess.Popen(
            [sys.executable, "-c", LOAD, base, str(SHARD), str(COUNT)], env=env
        )
        try:
            deadline = time.monotonic() + 120
            while (done := _progress(cache)) is None or len(done["shards"]) < 6:  # type: ignore[arg-type]
                assert child.poll() is None and time.monotonic() < deadline, "no progress"
                time.sleep(0.05)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        kept = int(done["items_done"])  # type: ignore[call-overload]
        assert 0 < kept < COUNT
        asked_before = server.requests
        monkeypatch.setenv("LOADWISE_CACHE", str(cache))
        from loadwise import InMemoryImageTextDataset
        from loadwise.compat import hf_cache
        from loadwise.sources import FetchOptions

        monkeypatch.setattr(hf_cache, "SHARD_BYTES", SHARD)
        urls = [f"{base}/files/{i}.jpg" for i in range(COUNT)]
        rows = datasets.Dataset.from_dict({"url": urls, "caption": [f"c{i}" for i in range(COUNT)]})
        resumed = InMemoryImageTextDataset(
            rows, image_size=32, workers=1, fetch=FetchOptions(in_flight=4)
        )
        asked = server.requests - asked_before
    assert len(resumed) == COUNT and resumed.report.valid == COUNT
    assert asked <= COUNT - kept + 2 * 4, f"{asked} requests after {kept} items were kept"
    assert (
        np.array(resumed[0]["image"]).shape == (32, 32, 3)
        and resumed[COUNT - 1]["caption"] == f"c{COUNT - 1}"
    )
