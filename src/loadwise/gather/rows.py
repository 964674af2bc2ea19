"""The row gather of every mode: from 64 KB on in ``torch.index_select`` on torch's own
threads, numpy below that (and in forked children where torch's threads would hang)."""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from loadwise.gather import recycle

#: Gathers of at least this many bytes run in ``torch.index_select`` (``take_rows``).
TORCH_GATHER_BYTES = 64 << 10
_TORCH_DTYPES = frozenset(
    np.dtype(t)
    for t in ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32",
              "float64", "complex64", "complex128")
)  # fmt: skip


def _rows_contiguous(source: np.ndarray) -> bool:
    """C-contiguous, or rows of contiguous items at any positive step (lazy's row view)."""
    if source.flags.c_contiguous:
        return True
    return source.ndim == 2 and source.strides[1] == source.itemsize and source.strides[0] > 0


_forked = [False]  # set in a child made by fork (register_at_fork below)


def torch_threads_safe() -> bool:
    """Whether torch ops may run here: in a forked child an OpenMP region of torch hangs
    (its threads stayed in the parent) unless torch runs on one thread, as DataLoader
    workers do; such a child gathers with numpy."""
    return not _forked[0] or torch.get_num_threads() == 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _forked.__setitem__(0, True))


def take_rows(source: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``source[rows]`` (``rows`` already checked). From ``TORCH_GATHER_BYTES`` on, a
    C-contiguous source is gathered by ``torch.index_select`` on torch's intra-op threads
    into a reused buffer (``recycle``).

    Why torch's threads: after any torch op its OpenMP threads spin for a while, so threads
    of our own gathering then ran at half speed on 2 cores (14 MB of few-shot tasks after a
    collate: 3.1 ms, torch's 1.5 ms; a batch of 64 images: 167 vs 107 us). Lazy mode's
    overlapping-rows view (terabytes virtually) goes the same way: ``index_select`` reads
    only the rows asked for (110 -> 58 us a batch). Any other source gets one numpy gather,
    and so does a forked child with torch on several threads (``torch_threads_safe``).
    """
    large = len(rows) * source.itemsize * math.prod(source.shape[1:]) >= TORCH_GATHER_BYTES
    if not (large and _rows_contiguous(source) and source.flags.writeable) or (
        source.dtype not in _TORCH_DTYPES or rows.dtype != np.int64 or not torch_threads_safe()
    ):
        return source[rows]
    out = recycle.empty((len(rows), *source.shape[1:]), source.dtype)
    whole, picks = torch.from_numpy(source), torch.from_numpy(rows)
    torch.index_select(whole, 0, picks, out=torch.from_numpy(out))
    return out
