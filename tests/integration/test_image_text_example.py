"""``examples/image_text.py --quick`` runs end to end: URLs on a local server (some broken)
loaded in memory, a tiny model trained, the report and epoch times printed, and the second
load served from the cache with no request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("datasets")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "image_text.py"


@pytest.mark.timeout(300)
def test_the_image_text_example_runs_quickly() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--quick"], capture_output=True, text=True, timeout=280
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "64 samples (60 valid, 4 failed)" in out
    for reason in ("http 404", "http 500", "timeout", "not an image"):
        assert reason in out
    assert "epoch 3:" in out and "documents: an epoch" in out
    assert "requests to the server: 0" in out and "from cache: True" in out
