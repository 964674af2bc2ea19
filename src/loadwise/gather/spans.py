"""Variable-length values of a batch, gathered without a Python step per sample.

A variable-length field keeps every sample's values end to end in one flat array (Arrow's
offsets + values); sample ``i`` is ``values[start_i : start_i + length_i]``. Seen as
overlapping rows of the batch's longest length (a row starting at every element), each
sample is one row: the whole batch is one row gather (on torch's threads when large), and
what lies past a sample's end is overwritten with padding. Rows too close to the end of
``values`` to have a full row are gathered by element positions instead.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from loadwise.gather import recycle
from loadwise.gather.rows import take_rows


def padded_take(
    values: np.ndarray, starts: np.ndarray, lengths: np.ndarray, pad: int | float = 0
) -> np.ndarray:
    """``(len(starts), max(lengths))``: row ``i`` holds ``values[starts[i]:][:lengths[i]]``,
    then ``pad``. ``values`` is 1-D; ``starts + lengths`` must lie within it (checked by the
    caller, which read them from verified offsets)."""
    count = len(starts)
    width = int(lengths.max()) if count else 0
    if count == 0 or width == 0:
        return np.zeros((count, width), values.dtype)
    full_rows = len(values) - width + 1  # rows of ``width`` that fit in ``values``
    fast = starts < full_rows
    if fast.all():
        out = take_rows(_rows(values, width, full_rows), starts)
    else:
        out = recycle.empty((count, width), values.dtype)
        if fast.any():
            out[fast] = take_rows(_rows(values, width, full_rows), starts[fast])
        near_end = starts[~fast, None] + np.arange(width)
        out[~fast] = values[np.minimum(near_end, len(values) - 1)]
    if lengths.min() < width:
        out[np.arange(width) >= lengths[:, None]] = pad
    return out


def _rows(values: np.ndarray, width: int, count: int) -> np.ndarray:
    """``values`` as ``count`` overlapping rows of ``width`` elements, one per element."""
    step = values.strides[0]
    return as_strided(values, shape=(count, width), strides=(step, step))


def starts_and_lengths(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where rows ``rows`` start in the flat values, and how long they are, from offsets."""
    starts = offsets[rows]
    return starts, offsets[rows + 1] - starts
