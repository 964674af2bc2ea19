"""Prepared rows through shared memory: ``pack``'s forked workers decode a range of items
straight into a slot of one shared mapping and send back only item names, failures and
the variable-length values, so this process copies a block of rows per range.

Pickling every decoded array back (and unpickling it here, while the pool's threads
compete for this process's GIL) cost about what a second core saved.
"""

from __future__ import annotations

import functools
import mmap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loadwise.errors import SourceError
from loadwise.format.fields import FieldSpec, FixedField
from loadwise.packing.pool import bounded_map, worker_pool
from loadwise.packing.prepare import Failed, Prepared, prepare_record
from loadwise.sources.base import IndexedSource
from loadwise.sources.media import DecodeOptions

ROWS = 256  # items per task: enough to make the per-task cost vanish, few enough to balance
_ALIGN = 64


@dataclass(frozen=True)
class RowBlock:
    """Consecutive prepared samples as columns: each fixed field's rows (a view of a shared
    slot, valid only until the next piece is asked for) and each other field's values."""

    items: list[str]
    arrays: dict[str, np.ndarray]
    values: dict[str, list[Any]]


Piece = Prepared | RowBlock


class RowSlots:
    """``count`` slots of ``ROWS`` rows of every fixed field, in one anonymous shared mapping
    that forked workers inherit; it is freed when the last process holding it ends."""

    def __init__(self, fields: Sequence[FieldSpec], count: int) -> None:
        self.count = count
        arrays = [f for f in fields if isinstance(f, FixedField)]
        sizes = [_aligned(ROWS * f.row_bytes) for f in arrays]
        slot_bytes = sum(sizes)
        memory = np.frombuffer(mmap.mmap(-1, max(1, slot_bytes * count)), np.uint8)
        self._slots = [
            _carve(memory[i * slot_bytes : (i + 1) * slot_bytes], arrays, sizes)
            for i in range(count)
        ]

    def slot(self, index: int) -> dict[str, np.ndarray]:
        """Slot ``index`` as ``ROWS`` rows per fixed field."""
        return self._slots[index]


def _aligned(size: int) -> int:
    return -(-size // _ALIGN) * _ALIGN


def _carve(
    memory: np.ndarray, fields: Sequence[FixedField], sizes: Sequence[int]
) -> dict[str, np.ndarray]:
    views, offset = {}, 0
    for spec, size in zip(fields, sizes, strict=True):
        rows = memory[offset : offset + ROWS * spec.row_bytes].view(spec.numpy_dtype)
        views[spec.name] = rows.reshape(ROWS, *spec.shape)
        offset += size
    return views


def shared_pieces(
    src: IndexedSource,
    decode: DecodeOptions,
    fields: Sequence[FieldSpec],
    workers: int,
    *,
    start: int,
    count: int,
) -> Iterator[Piece]:
    """Items from ``start`` on, prepared in ``workers`` forked processes with ``count``
    slots (tasks in flight), as blocks of rows and, for failures and misfits, single
    records; in source order."""
    tasks = [(a, min(a + ROWS, len(src))) for a in range(start, len(src), ROWS)]
    if not tasks:
        return
    slots = RowSlots(fields, count)
    state = _Worker(src, decode, tuple(fields), slots)
    with worker_pool(workers, _start_worker, (state,)) as pool:
        numbered = ((a, b, i % count) for i, (a, b) in enumerate(tasks))
        for i, outcomes in enumerate(bounded_map(pool, fill, numbered, count)):
            yield from unpack(outcomes, slots.slot(i % count), fields)


@dataclass(frozen=True)
class _Worker:
    source: IndexedSource
    decode: DecodeOptions
    fields: tuple[FieldSpec, ...]
    slots: RowSlots

    @functools.cached_property
    def names(self) -> set[str]:
        return {f.name for f in self.fields}


_STATE: list[_Worker] = []  # in a worker: what ``fill`` reads from, set once at its start

Outcome = tuple[str, "tuple[Any, ...] | dict[str, Any] | Failed"]


def _start_worker(state: _Worker) -> None:
    _STATE.append(state)


def fill(task: tuple[int, int, int]) -> list[Outcome]:
    """In a worker: prepare items ``start``..``stop`` into slot ``slot``, in order.

    Per item: a tuple of its variable values when its fixed rows went into the slot's
    next row, else its ``Failed`` or (a sample that does not fit the fields) the sample,
    for this process's writer to refuse with the usual message.
    """
    start, stop, slot = task
    state = _STATE[0]
    rows, placed, out = state.slots.slot(slot), 0, []
    for item, record in state.source.records(start, stop):
        outcome = _place(item, record, state, rows, placed)
        placed += isinstance(outcome, tuple)
        out.append((item, outcome))
    return out


def _place(
    item: str, record: dict[str, Any], state: _Worker, rows: dict[str, np.ndarray], row: int
) -> tuple[Any, ...] | dict[str, Any] | Failed:
    try:
        sample = prepare_record(record, state.decode)
    except SourceError as exc:
        return Failed(item, str(exc))
    if sample.keys() != state.names:
        return sample  # a field missing or extra: this process's writer refuses it
    fixed = [f for f in state.fields if isinstance(f, FixedField)]
    arrays = {f.name: sample[f.name] for f in fixed}
    others = [sample[f.name] for f in state.fields if not isinstance(f, FixedField)]
    if not all(_fits(f, arrays[f.name]) for f in fixed) or any(v is None for v in others):
        return sample  # this process's writer refuses it with the usual message
    for name, value in arrays.items():
        rows[name][row] = value
    return tuple(others)


def _fits(spec: FixedField, value: Any) -> bool:
    """A value that goes into the slot as it is: an array (or number) of the field's dtype
    and shape; anything else goes to this process's writer, which converts or refuses it."""
    if not isinstance(value, np.ndarray | np.generic | int | float | bool):
        return False
    array = np.asarray(value)
    return array.dtype == spec.numpy_dtype and array.shape == spec.shape


def unpack(
    outcomes: Sequence[Outcome], rows: Mapping[str, np.ndarray], fields: Sequence[FieldSpec]
) -> Iterator[Piece]:
    """A task's outcomes as pieces in source order: each run of rows in the slot as one
    ``RowBlock``, every other item as a single prepared record."""
    others = [f.name for f in fields if not isinstance(f, FixedField)]
    run: list[tuple[str, tuple[Any, ...]]] = []
    placed = 0
    for item, outcome in outcomes:
        if isinstance(outcome, tuple):
            run.append((item, outcome))
            continue
        if run:
            yield _block(run, rows, placed, others)
            placed, run = placed + len(run), []
        yield item, outcome
    if run:
        yield _block(run, rows, placed, others)


def _block(
    run: list[tuple[str, tuple[Any, ...]]],
    rows: Mapping[str, np.ndarray],
    first: int,
    others: list[str],
) -> RowBlock:
    items = [item for item, _ in run]
    columns = zip(*(values for _, values in run), strict=True) if others else ()
    return RowBlock(
        items,
        {name: view[first : first + len(run)] for name, view in rows.items()},
        {name: list(column) for name, column in zip(others, columns, strict=True)},
    )
