"""Source items to prepared pieces, in source order: in this process, or in worker processes.

With workers, a source that hands out index ranges (folders, arrays) is prepared by forked
workers into shared memory (``slots.py``): rows come back as blocks, and only names,
failures and bytes/string values are pickled. Other sources (archives, iterables) send
records to the workers and get every prepared value back pickled.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from loadwise.format.fields import EncodedImage, FieldSpec
from loadwise.packing.options import PackPlan
from loadwise.packing.pool import bounded_map, can_fork, worker_pool
from loadwise.packing.prepare import Failed, Prepared, infer_fields, prepare_chunk
from loadwise.packing.slots import ROWS, Piece, shared_pieces
from loadwise.sources import IndexedSource, Source

_CHUNK = 32
#: Items prepared here before any worker starts (they give the fields and the samples'
#: size): few, since the workers wait for them (32 photos of 12 MP: ~1.5 s on one core).
_FIRST = 8
_AHEAD_BYTES = 64 << 20
_MAX_AHEAD = 1024


def prepared(
    src: Source, plan: PackPlan, skip: int, fields: Sequence[FieldSpec] = ()
) -> Iterator[Piece]:
    """Pieces for the items after the first ``skip`` (those are not read at all).

    The first ``_FIRST`` items are prepared here: they size the pipeline and, unless
    ``fields`` are already known (a resumed pack), give the fields shared rows are laid
    out by.
    """
    first_records, records = _split(src, skip)
    first = prepare_chunk(plan.decode, first_records)
    yield from first
    workers = plan.workers
    if workers == 1:
        work = partial(prepare_chunk, plan.decode)
        yield from itertools.chain.from_iterable(map(work, _chunks(records, _CHUNK)))
        return
    fields = fields or _fields_of(first, src.categories, plan)
    if fields and isinstance(src, IndexedSource) and can_fork():
        count = _ahead(first, workers, ROWS)
        start = skip + len(first)
        yield from shared_pieces(src, plan.decode, fields, workers, start=start, count=count)
    else:
        yield from _pickled(records, plan, _ahead(first, workers, _CHUNK))


def _split(src: Source, skip: int) -> tuple[list[tuple[str, Any]], Iterator[tuple[str, Any]]]:
    """The first ``_FIRST`` records after ``skip``, and an iterator over the rest.

    A source of index ranges reads the first ones as a range of their own, and the rest
    lazily: a source that fetches ahead (URLs) must not start on records that forked
    workers then fetch again (read as one stream, its window ran past the first 8: 56 of
    2,000 images were downloaded twice)."""
    if isinstance(src, IndexedSource):
        stop = min(skip + _FIRST, len(src))
        return list(src.records(skip, stop)), src.records(stop, len(src))
    records = itertools.islice(iter(src), skip, None)
    return list(itertools.islice(records, _FIRST)), records


def _fields_of(
    chunk: Sequence[Prepared], categories: Mapping[str, tuple[str, ...]], plan: PackPlan
) -> tuple[FieldSpec, ...]:
    """The fields the first readable sample of ``chunk`` gives; none if nothing was read."""
    for item, sample in chunk:
        if not isinstance(sample, Failed):
            return infer_fields(sample, categories, plan.schema, item)
    return ()


def _pickled(records: Iterator[tuple[str, Any]], plan: PackPlan, ahead: int) -> Iterator[Prepared]:
    """Records pickled to ``workers`` processes in chunks, prepared values pickled back."""
    with worker_pool(plan.workers) as pool:
        work = partial(prepare_chunk, plan.decode)
        chunks = _chunks(records, _CHUNK)
        yield from itertools.chain.from_iterable(bounded_map(pool, work, chunks, ahead))


def _ahead(chunk: Sequence[Prepared], workers: int, per_task: int) -> int:
    """Tasks of ``per_task`` items in flight: about ``_AHEAD_BYTES`` of prepared samples, so
    the workers keep preparing while this process writes a shard (with 8 chunks of 32 they
    idled: 1.0x -> 1.3x with 2 workers here), and at least 4 per worker."""
    ok = [s for _, s in chunk if not isinstance(s, Failed)]
    size = sum(_nbytes(v) for s in ok for v in s.values()) * per_task // max(len(ok), 1)
    return max(4 * workers, min(_MAX_AHEAD, _AHEAD_BYTES // max(size, 1)))


def _nbytes(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, EncodedImage):
        return len(value.data)
    return len(value) if isinstance(value, bytes | str) else 8


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
