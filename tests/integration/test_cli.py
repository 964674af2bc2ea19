"""The command line, run as users run it: a real subprocess and the entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadwise.cli.main import main


def test_help_for_every_command(capsys: pytest.CaptureFixture) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "loadwise.cli.main", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(command in out for command in ("pack", "info", "verify"))
    for command in ("pack", "info", "verify"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: loadwise {command}" in capsys.readouterr().out


def test_pack_info_verify(
    omniglot_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    dest = tmp_path / "d"
    assert main(["pack", str(omniglot_tree), str(dest), "--workers", "2", "--shard-mb", "0.1"]) == 0
    assert "packed 60 samples" in capsys.readouterr().out
    assert main(["info", str(dest), "--shards"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "60 samples",
        "image",
        "1x105x105",
        "alphabet",
        "-00000.arrow",
        "auto mode here",
    ):
        assert expected in out
    assert main(["verify", str(dest)]) == 0
    assert "checked: ok" in capsys.readouterr().out


def test_errors_are_one_line_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["pack", str(tmp_path / "missing"), str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loadwise pack: error: source folder") and "does not exist" in err
    assert main(["info", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err
