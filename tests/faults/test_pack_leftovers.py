"""What a pack killed while publishing leaves behind is cleaned up by the next pack."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import loadwise


def test_a_dead_packs_old_dataset_is_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid names the dead pack
    old = tmp_path / f".d.loadwise.old-{dead.pid}-0123abcd"
    old.mkdir()
    (old / "manifest.json").write_text("{}")  # what a published dataset moved aside holds
    loadwise.pack({"x": np.arange(4)}, tmp_path / "d.loadwise", overwrite=True, progress=False)
    assert not old.exists(), "the old dataset of a dead pack was left behind"


def test_overwrite_swaps_the_folders_in_one_step(tmp_path: Path) -> None:
    """The destination is never missing: the new dataset and the old trade places at once."""
    from loadwise.packing import staging

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "which").write_text("a")
    (b / "which").write_text("b")
    if staging._renameat2() is None:
        pytest.skip("no renameat2 here: two renames are used instead")
    assert staging._exchange(a, b)
    assert (a / "which").read_text() == "b" and (b / "which").read_text() == "a"
    dest = tmp_path / "d.loadwise"
    loadwise.pack({"x": np.arange(4)}, dest, progress=False)
    loadwise.pack({"x": np.arange(5)}, dest, overwrite=True, progress=False)
    assert len(loadwise.open(dest, "lazy")) == 5
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
