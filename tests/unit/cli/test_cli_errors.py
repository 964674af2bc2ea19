"""Issue 18: the command line answers a file it cannot read or write with one line and exit 2
(``verify`` keeps exit 1 for damaged shards), packs archives as the API does, and refuses
arguments it would otherwise guess at."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import loadwise
import loadwise.cli.info_cmd
from loadwise.cli.main import main
from loadwise.format.reader import load_manifest

ROOT = os.geteuid() == 0  # root reads and writes through any permission bits


@pytest.fixture
def packed(tmp_path: Path) -> Path:
    loadwise.pack({"x": np.arange(100)}, tmp_path / "d", shard_bytes=300, progress=False)
    return tmp_path / "d"


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert match in err, err


def _denied(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Opening files named ``name`` fails with EACCES, as for a user without read access
    (these tests run as root, which the permission bits do not stop)."""
    real_open = os.open

    def fake_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path).endswith(name):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)


def test_an_unreadable_manifest_is_one_line_and_exit_2(
    packed: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for command in ("info", "verify"):
        with monkeypatch.context() as patch:
            _denied(patch, "manifest.json")
            _one_line_exit_2([command, str(packed)], capsys, "Permission denied; give this user")
    (packed / "manifest.json").unlink()
    (packed / "manifest.json").mkdir()  # no file there at all
    _one_line_exit_2(["info", str(packed)], capsys, "manifest.json` is a folder")


def test_an_unreadable_shard_is_exit_2_not_damaged(
    packed: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shard = load_manifest(packed).shards[1].name
    _denied(monkeypatch, shard)
    _one_line_exit_2(["verify", str(packed)], capsys, f"cannot open shard `{shard}`")


@pytest.mark.skipif(ROOT, reason="root reads files whatever their permission bits")
def test_real_permission_bits_are_exit_2(packed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (packed / "manifest.json").chmod(0)
    _one_line_exit_2(["info", str(packed)], capsys, "Permission denied")


def test_an_unwritable_destination_is_one_line_and_exit_2(
    class_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    _one_line_exit_2(["pack", str(class_tree), str(tmp_path / "file" / "d")], capsys,
                     "cannot write the pack of")  # fmt: skip
    readonly = tmp_path / "ro"
    readonly.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(readonly)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        return  # no read-only filesystem to be had here; the case above stands
    try:
        _one_line_exit_2(["pack", str(class_tree), str(readonly / "d")], capsys,
                         "Read-only file system (`")  # fmt: skip
    finally:
        subprocess.run(["umount", str(readonly)], check=True)


def test_any_other_os_error_is_one_line_too(
    packed: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(args: Any) -> int:
        raise OSError(errno.EIO, "Input/output error", "somewhere")

    monkeypatch.setattr(loadwise.cli.info_cmd, "run", failing)
    _one_line_exit_2(["info", str(packed)], capsys, "`somewhere` Input/output error")


def test_pack_takes_an_archive_like_the_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for i, name in enumerate(["cat/1.png", "cat/2.png", "dog/1.png"]):
            png = io.BytesIO()
            Image.fromarray(np.full((4, 4), i, np.uint8)).save(png, "PNG")
            out.writestr(name, png.getvalue())
    assert main(["pack", str(archive), str(tmp_path / "d"), "--image-size", "4"]) == 0
    assert "packed 3 samples" in capsys.readouterr().out
    _one_line_exit_2(["pack", str(archive), str(tmp_path / "e"), "--layout", "omniglot"], capsys,
                     "does not match archive")  # fmt: skip


def test_an_image_size_of_three_numbers_is_refused(
    class_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["pack", str(class_tree), str(tmp_path / "d"), "--image-size", "8", "8", "8"]
    _one_line_exit_2(argv, capsys, "one number (a square) or two (height width). Found: 8 8 8")
    assert not (tmp_path / "d").exists()
