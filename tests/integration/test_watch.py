"""``loadwise watch -- python script.py``: an unchanged script, monitored from outside."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import torch
    from torch.utils.data import DataLoader, Dataset

    class Slow(Dataset):
        def __len__(self):
            return 48

        def __getitem__(self, i):
            time.sleep(0.004)
            return torch.full((32,), i)

    loader = DataLoader(Slow(), batch_size=8, num_workers=2)
    for epoch in range(2):
        it = iter(loader)
        assert type(it).__name__ == "_MultiProcessingDataLoaderIter"  # iterators keep their type
        seen = [int(b[0, 0]) for b in it]
    assert seen == list(range(0, 48, 8))
    print("script done")
    sys.exit(3)
    """
)


def test_watch_reports_an_unchanged_script(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out_json, png = tmp_path / "report.json", tmp_path / "watch.png"
    done = subprocess.run(
        [sys.executable, "-m", "loadwise.cli.main", "watch", "--json", str(out_json),
         "--plot", str(png), "--interval", "0.1", "--", sys.executable, str(script)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr  # the script's own exit code
    assert "script done" in done.stdout
    assert "DataLoader 1: Slow, batch_size=8, num_workers=2" in done.stdout
    assert "diagnosis: input-bound" in done.stdout
    assert "worker 0" in done.stdout and "worker 1" in done.stdout
    report = json.loads(out_json.read_text())
    (process,) = report["processes"]
    stats = process["loaders"][0]["stats"]
    assert [e["batches"] for e in stats["epochs"]] == [6, 6]
    assert stats["samples"] == 96 and stats["data_wait_fraction"] > 0.8
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_watch_without_a_command_or_a_dataloader(tmp_path: Path) -> None:
    from loadwise.cli.main import main

    assert main(["watch"]) == 2
    script = tmp_path / "plain.py"
    script.write_text("print('no loader here')\n")
    done = subprocess.run(
        [sys.executable, "-m", "loadwise.cli.main", "watch", "--", sys.executable, str(script)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "no DataLoader yielded a batch" in done.stderr
