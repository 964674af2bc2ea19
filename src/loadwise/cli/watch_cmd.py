"""``loadwise watch -- CMD``: run CMD with the startup hook on PYTHONPATH, then print the
report of every DataLoader it iterated (what users read is ``parsers.WATCH_DOC``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from loadwise.errors import ConfigError
from loadwise.monitoring import report
from loadwise.monitoring.stats import MonitorStats
from loadwise.monitoring.watch_hook import ENV_DIR, ENV_INTERVAL

STARTUP = Path(__file__).resolve().parent.parent / "monitoring" / "_startup"


def run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise ConfigError("give the command to watch after `--`: loadwise watch -- python train.py")
    if not args.interval > 0:
        raise ConfigError(f"`--interval` must be positive seconds. Found: {args.interval}.")
    with tempfile.TemporaryDirectory(prefix="loadwise-watch-") as folder:
        code = _run(command, _environment(folder, args.interval))
        reports = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("report-*.json"))]
    entries = [(r, entry) for r in reports for entry in r["loaders"]]
    if not entries:
        print("loadwise watch: no DataLoader yielded a batch in this command "
              "(or it exited through os._exit / a signal before writing its report).",
              file=sys.stderr)  # fmt: skip
        return code or 1
    for i, (process, entry) in enumerate(entries):
        stats = MonitorStats.from_dict(entry["stats"])
        print(("\n" if i else "") + report.text(stats, f"{entry['label']} (pid {process['pid']})"))
        if args.plot:
            path = _numbered(Path(args.plot), i, len(entries))
            report.write_png(stats, path, entry["label"])
            print(f"plot: {path}")
    if args.json:
        payload = {"command": command, "exit_code": code, "processes": reports}
        Path(args.json).write_text(json.dumps(payload) + "\n")
        print(f"report: {args.json}")
    return code


def _environment(folder: str, interval: float) -> dict[str, str]:
    env = dict(os.environ)
    env[ENV_DIR], env[ENV_INTERVAL] = folder, str(interval)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(STARTUP), env.get("PYTHONPATH")) if p)
    return env


def _run(command: list[str], env: dict[str, str]) -> int:
    """Run to the end; Ctrl-C goes to the command (which still writes its report)."""
    try:
        child = subprocess.Popen(command, env=env)
    except FileNotFoundError:
        raise ConfigError(f"command `{command[0]}` not found; check the PATH.") from None
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def _numbered(path: Path, i: int, count: int) -> Path:
    return path if count == 1 else path.with_name(f"{path.stem}-{i + 1}{path.suffix}")
