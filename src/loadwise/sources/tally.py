"""Counters of what a source has read (items, bytes, failures) that every process reading it
adds to, so a progress bar in the parent shows what ``pack``'s forked workers are doing.

The counters live in an anonymous shared mapping that forked children inherit; each process
writes its own row (its pid modulo 64), so no lock is taken and updates collide only if two
readers' pids are 64 apart (a progress bar can live with that). A tally pickled to a spawned
process arrives empty and private there: only forked readers are counted.
"""

from __future__ import annotations

import mmap
import os
from typing import Any

import numpy as np

_ROWS = 64
_ITEMS, _BYTES, _FAILURES = range(3)


class Tally:
    """Items read, bytes read and failures met, summed over the processes reading a source."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, _ROWS * 3 * 8)
        self._rows = np.frombuffer(self._memory, np.int64).reshape(_ROWS, 3)

    def add(self, items: int = 0, nbytes: int = 0, failures: int = 0) -> None:
        """Count in this process's row."""
        row = self._rows[os.getpid() % _ROWS]
        row[_ITEMS] += items
        row[_BYTES] += nbytes
        row[_FAILURES] += failures

    def totals(self) -> tuple[int, int, int]:
        """``(items, bytes, failures)`` over every process."""
        items, nbytes, failures = (int(v) for v in self._rows.sum(axis=0))
        return items, nbytes, failures

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
