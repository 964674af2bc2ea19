"""The CLI's parsers repeat a few library constants (importing them would load torch)."""

from __future__ import annotations

import pytest

from loadwise.bench.modes import MODES
from loadwise.cli import parsers
from loadwise.cli.main import build_parser, main
from loadwise.packing import DEFAULT_SHARD_BYTES, ON_ERROR
from loadwise.sources import LAYOUTS


def test_choices_match_the_library() -> None:
    assert parsers.LAYOUTS == LAYOUTS
    assert parsers.ON_ERROR == ON_ERROR
    assert parsers.DEFAULT_SHARD_MB == DEFAULT_SHARD_BYTES / 2**20
    assert parsers.BENCH_MODES == MODES


def test_every_command_has_a_module_that_runs_it() -> None:
    import importlib

    for name in parsers.COMMANDS:
        assert callable(importlib.import_module(f"loadwise.cli.{name}_cmd").run), name
    args = build_parser().parse_args(["bench", "somewhere", "--modes", "lazy"])
    assert args.run == "bench" and args.modes == ["lazy"]


def test_a_bad_choice_is_refused_before_any_command_runs(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["pack", "src", "dest", "--on-error", "ignore"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'ignore'" in capsys.readouterr().err
