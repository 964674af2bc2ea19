"""`loadwise bench` and `loadwise tune` on a packed dataset, as users run them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadwise.cli.main import main


def test_bench_prints_every_mode_and_writes_json_and_png(
    arrays_packed: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("matplotlib")
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    code = main(["bench", str(arrays_packed), "--workers", "0", "--seconds", "0.2",
                 "--json", str(out_json), "--plot", str(out_png)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    for mode in ("eager", "lazy", "cached", "streaming"):
        assert f"\n{mode} " in printed
    rows = json.loads(out_json.read_text())
    assert [r["name"] for r in rows] == ["eager w0", "lazy w0", "cached w0", "streaming w0"]
    assert all(r["samples_per_epoch"][0] > 0 and r["peak_pss"] > 0 for r in rows)
    assert out_png.read_bytes()[:4] == b"\x89PNG"


def test_bench_refuses_an_unknown_mode(arrays_packed: Path) -> None:
    with pytest.raises(SystemExit):
        main(["bench", str(arrays_packed), "--modes", "turbo"])


def test_tune_prints_a_ranking_and_caches_the_winner(
    arrays_packed: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("LOADWISE_CACHE", str(tmp_path))
    monkeypatch.setattr("os.cpu_count", lambda: 1)  # candidates: 0 and 1 worker
    assert main(["tune", str(arrays_packed), "--mode", "lazy", "--seconds", "0.2"]) == 0
    printed = capsys.readouterr().out
    assert "recommended: DataLoaderConfig(batch_size=64, num_workers=" in printed
    assert len(list((tmp_path / "tune").glob("*.json"))) == 1
