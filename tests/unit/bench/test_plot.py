"""draw_rates(): samples/s bars per panel, written as a PNG."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadwise.bench.plot import draw_rates


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = draw_rates({"decoded": [("a", 10.0), ("b", 1000.0)]}, tmp_path / "r.png",
                     limits={"decoded": 2000.0})  # fmt: skip
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
