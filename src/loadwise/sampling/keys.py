"""Counter-based random keys: a batch of tasks drawn with a few array operations, no generators.

Key ``j`` of stream ``s`` of task ``i`` is a fixed 64-bit hash of ``(seed, i, s, j)`` (the
splitmix64 finalizer, a bijection, chained over the four parts), so it does not depend on
the batch, the worker or the order of reading. Taking the ``k`` smallest of ``n`` keys
draws ``k`` of ``n`` without replacement, in a uniformly random order: the keys' low bits
hold ``j`` so no two keys of a row are equal and the order is total. A row much larger
than ``k`` (classes of a task, out of thousands) instead keeps the first ``k`` distinct of
a few uniform draws: the same law, at a cost that does not grow with the row.

A fresh ``numpy`` generator per task cost ~9 us to make and ~25 us of small calls to use;
this draws a batch of 16 tasks in well under that per task.
"""

from __future__ import annotations

import numpy as np

from loadwise.errors import ConfigError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
#: Low bits of a key that hold its slot ``j``: rows of up to 2**20 slots.
SLOT_BITS = 20
_HIGH = np.uint64(~((1 << SLOT_BITS) - 1) & (2**64 - 1))


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer of ``x + golden``, elementwise: a bijection of uint64."""
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def seed_state(seed: int) -> np.uint64:
    """A 64-bit state from any non-negative integer seed (every 64-bit word of it counts)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"`seed` must be an integer >= 0. Found: {seed!r}.")
    state, value = np.array([0], np.uint64), int(seed)
    while True:
        state = mix(state ^ np.uint64(value & (2**64 - 1)))
        value >>= 64
        if not value:
            return np.uint64(state[0])


def task_states(seed: int, task_ids: np.ndarray) -> np.ndarray:
    """One 64-bit state per task id, from ``(seed, i)`` only."""
    return mix(seed_state(seed) ^ np.asarray(task_ids, dtype=np.int64).astype(np.uint64))


#: Rows of at least this many times ``candidates(k)`` items draw by rejection.
SPARSE_ROWS = 4
#: The stream bit that keeps rejection candidates apart from the same row's full keys.
_CANDIDATES = np.uint64(1 << 63)


def candidates(k: int) -> int:
    """Candidate slots a rejection draw of ``k`` takes: at a quarter of the row's size, the
    expected distinct count is ~0.88x this, far above ``k``."""
    return 2 * k + 16


def draw(
    states: np.ndarray, stream: np.ndarray | int, sizes: np.ndarray | int, k: int
) -> np.ndarray:
    """``k`` of ``range(sizes[r])`` per row ``r``, without replacement, in random order.

    ``states``, ``stream`` and ``sizes`` broadcast to the rows' shape; the result has a last
    axis of ``k`` (``k`` <= every size). A row of at least ``SPARSE_ROWS x candidates(k)``
    items draws by rejection from ``candidates(k)`` keys, so a task over 100k classes costs
    no more than one over 1k; a smaller row keys every item and takes the ``k`` smallest.
    Which way a row goes depends only on its size and ``k``, so a row is the same in any
    batch.
    """
    shape = np.broadcast_shapes(np.shape(states), np.shape(stream), np.shape(sizes))
    rows_states = np.broadcast_to(np.asarray(states, np.uint64), shape).reshape(-1)
    rows_streams = np.broadcast_to(np.asarray(stream).astype(np.uint64), shape).reshape(-1)
    rows_sizes = np.broadcast_to(np.asarray(sizes, np.int64), shape).reshape(-1)
    if rows_sizes.size and rows_sizes.max() > 1 << SLOT_BITS:
        raise ConfigError(f"cannot draw among {int(rows_sizes.max()):,} items: at most "
                          f"{1 << SLOT_BITS:,}.")  # fmt: skip
    out = np.empty((rows_sizes.size, k), dtype=np.int64)
    dense = rows_sizes < SPARSE_ROWS * candidates(k)
    sparse = np.flatnonzero(~dense)
    if sparse.size:
        drawn, complete = _by_rejection(
            rows_states[sparse], rows_streams[sparse], rows_sizes[sparse], k
        )
        out[sparse[complete]] = drawn
        dense[sparse[~complete]] = True  # too few distinct candidates: key every item
    if dense.any():
        out[dense] = _smallest(rows_states[dense], rows_streams[dense], rows_sizes[dense], k)
    return out.reshape(*shape, k)


def _by_rejection(
    states: np.ndarray, streams: np.ndarray, sizes: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` distinct of ``candidates(k)`` uniform draws per row, and which rows
    had ``k`` distinct. Keeping the first distinct values of i.i.d. uniform draws is exact
    sampling without replacement in random order, and stays so given that ``k`` were
    distinct: that event does not depend on which items were drawn."""
    keys = row_keys(states, streams | _CANDIDATES, candidates(k)) >> np.uint64(SLOT_BITS)
    values = (keys * sizes[:, None].astype(np.uint64)) >> np.uint64(64 - SLOT_BITS)
    order = np.argsort(values, axis=-1, kind="stable")  # equal values keep draw order
    ordered = np.take_along_axis(values, order, axis=-1)
    repeat = np.zeros(values.shape, dtype=bool)
    np.put_along_axis(repeat, order[:, 1:], ordered[:, 1:] == ordered[:, :-1], axis=-1)
    first = ~repeat & (np.cumsum(~repeat, axis=-1) <= k)
    complete = first.sum(axis=-1) == k
    drawn = values[complete][first[complete]].reshape(-1, k).astype(np.int64)
    return drawn, complete


def _smallest(states: np.ndarray, streams: np.ndarray, sizes: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` smallest keys of each row's ``range(size)``, smallest first."""
    n = int(sizes.max())
    keys = row_keys(states, streams, n)
    keys[np.arange(n) >= sizes[:, None]] = np.uint64(2**64 - 1)
    if 2 * k >= n:  # most of the row: one sort is cheaper than partition + sort
        return np.argsort(keys, axis=-1)[:, :k]
    part = np.argpartition(keys, k - 1, axis=-1)[:, :k]
    order = np.argsort(np.take_along_axis(keys, part, axis=-1), axis=-1)
    return np.take_along_axis(part, order, axis=-1)


def row_keys(states: np.ndarray, stream: np.ndarray | int, n: int) -> np.ndarray:
    """Keys ``[..., n]``: slot ``j`` of a row hashed from its state, stream and ``j``."""
    row = mix(np.asarray(states, np.uint64) ^ np.asarray(stream).astype(np.uint64))
    slots = np.arange(n, dtype=np.uint64)
    return (mix(row[..., None] ^ (slots * _GOLDEN)) & _HIGH) | slots
