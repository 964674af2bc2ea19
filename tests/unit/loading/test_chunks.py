"""Chunks of consecutive batches per worker item: same batches, exact resume, errors by batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import loadwise
from loadwise.loading.chunks import BUDGET_BYTES, MAX_BATCHES, ChunkSampler
from loadwise.loading.faults import worker_failure
from loadwise.loading.sampler import EpochBatchSampler
from loadwise.sampling.order import epoch_order


def _sampler(n: int = 50, batch: int = 4) -> EpochBatchSampler:
    return EpochBatchSampler(lambda e: epoch_order(n, 0, e, True), n, batch, False)


def test_chunks_are_the_batches_in_order_and_name_them() -> None:
    inner = _sampler()
    chunks = ChunkSampler(inner)
    chunks.size = 3
    got = list(chunks)
    assert [len(c.batches) for c in got] == [3, 3, 3, 3, 1]  # 13 batches of 50 samples
    flat = [b for c in got for b in c.batches]
    assert [b.tolist() for b in flat] == [b.tolist() for b in inner.current]
    assert list(chunks.batches_of(1)) == [3, 4, 5] and list(chunks.batches_of(4)) == [12]
    assert list(chunks.batches_of(9)) == [] and len(chunks) == 13
    handing = iter(chunks)  # the DataLoader takes chunks as workers have room
    next(handing), next(handing)
    assert list(chunks.batches_of(1)) == [3, 4, 5]  # the last handed out, not the epoch's rest


def test_chunk_size_follows_time_and_bytes() -> None:
    chunks = ChunkSampler(_sampler())
    chunks.observe(0.0001 * 8, 1000 * 8, 8)  # 0.1 ms a batch: 40 of them fill 4 ms
    assert chunks.size == MAX_BATCHES
    chunks = ChunkSampler(_sampler())
    chunks.observe(0.0001, BUDGET_BYTES // 8, 1)  # 1 MB batches: eight to a chunk
    assert chunks.size == 8
    chunks.observe(0.5, 10, 1)  # slow ones: one per item
    assert chunks.size == 1
    chunks = ChunkSampler(_sampler())
    chunks.observe(0.0001, 2 << 20, 1)  # fast but large: one per item
    assert chunks.size == 1


def _equal(a: Any, b: Any) -> bool:
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else bool(a == b)


def _rows(batches: list[dict[str, Any]]) -> list[int]:
    return [int(i) for b in batches for i in b["index"]]


def test_chunked_batches_equal_the_0_worker_ones_and_resume_mid_chunk(
    arrays_packed: Path,
) -> None:
    ds = loadwise.open(arrays_packed, "eager")
    here = list(loadwise.loader(ds, 8, seed=3))
    loader = loadwise.loader(ds, 8, seed=3, num_workers=2)
    assert loader.chunks is not None
    first = list(loader)  # epoch 0: the workers' reports size the chunks
    assert loader.chunks.size > 1  # in-RAM batches of 8 rows are far below the budget
    for a, b in zip(first, here, strict=True):
        assert a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    whole = list(loader)  # epoch 1, chunked from its first item
    loader.set_epoch(1)
    batches = iter(loader)
    taken = [next(batches) for _ in range(5)]  # stops inside a chunk
    state = loader.state_dict()
    assert state["position"] == 40
    del batches
    again = loadwise.loader(ds, 8, seed=3, num_workers=2)
    again.load_state_dict(state)
    rest = list(again)
    assert _rows(taken) + _rows(rest) == _rows(whole)
    assert len(set(_rows(whole))) == len(ds)


@pytest.mark.parametrize("known", [True, False])
def test_a_dead_workers_chunks_are_named_by_their_batches(known: bool) -> None:
    class Worker:
        pid, alive = 22, False

        def is_alive(self) -> bool:
            return False

    class Iterator:
        _workers = [Worker()]
        _task_info: dict[int, tuple[int, ...]] = {1: (0,), 2: (0,)}
        _rcvd_idx = 1

    batches = [np.arange(i * 4, i * 4 + 4) for i in range(6)]
    chunks = ChunkSampler(_sampler(24))
    chunks.starts, chunks.handed, chunks.inner.current = [0, 2, 4], 6, batches
    numbers = chunks.batches_of if known else None
    exc = RuntimeError("DataLoader worker (pid 22) is killed by signal: Killed. ")
    error = worker_failure(exc, Iterator(), batches, 0, 8, numbers)
    assert error is not None
    expected = [2, 3, 4, 5] if known else [1, 2]  # items 1 and 2: batches 2-3 and 4-5
    assert [int(b[0]) // 4 for b in error.batches] == expected
