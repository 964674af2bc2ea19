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
    too_high = high is not None and isinstance(value, int) and value > high
    if isinstance(value, bool) or not isinstance(value, int) or value < low or too_high:
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"`{name}` must be an integer {bound}. Found: {value!r}.")
    return value


def check_root(root: str | Path) -> Path:
    """``root`` as a Path; a ConfigError if it exists and holds anything already."""
    path = Path(root)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(
            f"`root` must be a missing or empty folder, but `{path}` already holds files: "
            f"pick a new folder or delete it first (nothing is overwritten)."
        )
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
