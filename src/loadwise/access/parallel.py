"""How many threads one batch may use in this process, and the row gather that uses them.

A batch's threads are the process's usable cores, divided among DataLoader workers when in
one (``LOADWISE_THREADS`` overrides). Decoding images and gathering large batches of rows
use them; both release the GIL.
"""

from __future__ import annotations

import os

import numpy as np
from torch.utils.data import get_worker_info

from loadwise.errors import ConfigError
from loadwise.format.threads import threads

THREADS_ENV = "LOADWISE_THREADS"
#: Gathers producing at least this many bytes are shared out among the batch's threads: the
#: fresh output's page faults and the copy both scale with cores (35 MB: 7.6 -> 4.7 ms on 2
#: cores); below it a thread hand-off costs more than it saves.
PARALLEL_BYTES = 4 << 20


def batch_threads() -> int:
    """Threads a batch may use in this process."""
    if (given := os.environ.get(THREADS_ENV)) is not None:
        if not given.isdigit() or int(given) < 1:
            raise ConfigError(f"`{THREADS_ENV}` must be an integer >= 1. Found: {given!r}.")
        return int(given)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    worker = get_worker_info()
    return max(1, (cores or 1) // (worker.num_workers if worker is not None else 1))


def take_rows(source: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``source[rows]`` (``rows`` already checked), on the batch's threads when it is large.

    Only a C-contiguous ``source`` is shared out: ``np.take`` copies any other source whole
    first (lazy mode's overlapping-rows view would be terabytes), so it gets one gather.
    """
    if len(rows) * source.strides[0] < PARALLEL_BYTES or not source.flags.c_contiguous:
        return source[rows]  # a C-contiguous source's first stride is its row's bytes
    pool = threads(batch_threads())
    if pool is None:
        return source[rows]
    out = np.empty((len(rows), *source.shape[1:]), source.dtype)

    def take(piece: range) -> None:
        part = slice(piece.start, piece.stop)
        np.take(source, rows[part], axis=0, out=out[part], mode="clip")  # "raise" would buffer

    pool.for_each(take, len(rows))
    return out
