"""Argument checks, output-folder checks and the serial-or-process-pool runner shared by the
generators in this package."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

from loadwise.errors import ConfigError

T = TypeVar("T")


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, else a ConfigError naming the argument."""
    valid = isinstance(value, int) and not isinstance(value, bool)
    if not valid or value < low or (high is not None and value > high):  # type: ignore[operator]
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"`{name}` must be an integer {bound}. Found: {value!r}.")
    return int(value)  # type: ignore[call-overload]


def fresh_root(root: str | Path) -> Path:
    """``root`` as a Path, created if missing; a ConfigError if it holds anything already."""
    path = Path(root)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(
            f"`root` must be a missing or empty folder, but `{path}` already holds files: "
            f"pick a new folder or delete it first (nothing is overwritten)."
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_jobs(fn: Callable[[T], None], jobs: Iterable[T], workers: int) -> None:
    """Run ``fn`` on every job, in this process or in ``workers`` processes."""
    if workers == 1:
        for job in jobs:
            fn(job)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(fn, jobs, chunksize=4):
            pass
