"""Streaming's two read paths (one span, or one pread per row) give lazy mode's rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import loadwise
from loadwise.access import streaming


@pytest.mark.parametrize("span_bytes", [0, 1 << 30])
def test_rows_match_lazy_across_shards(
    arrays_packed: Path, span_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streaming, "_SPAN_BYTES", span_bytes)
    idx = np.random.default_rng(0).permutation(300)[:97]
    idx[:3] = [299, 0, 299]  # ends of the range and a repeat
    with loadwise.open(arrays_packed, "streaming") as s, loadwise.open(arrays_packed, "lazy") as z:
        got, want = s.get_batch(idx), z.get_batch(idx)
    for name, value in want.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(got[name], value), name
        else:
            assert got[name] == value, name
