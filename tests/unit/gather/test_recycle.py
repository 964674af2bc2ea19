"""Large batch buffers are reused only when nothing views them any more."""

from __future__ import annotations

import numpy as np
import torch

from loadwise.gather.recycle import POOLED_BYTES, BufferPool

U8 = np.dtype(np.uint8)
SHAPE = (POOLED_BYTES // 1000 + 1, 1000)  # just over the pooled size


def address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


def test_a_buffer_comes_back_once_every_view_of_it_is_gone() -> None:
    pool = BufferPool()
    first = pool.empty(SHAPE, U8)
    where = address(first)
    view_of_view = first[1:][::2]
    tensor = torch.from_numpy(first)[3:]
    del first
    assert address(pool.empty(SHAPE, U8)) != where  # views still hold it
    del view_of_view
    assert address(pool.empty(SHAPE, U8)) != where  # the tensor still holds it
    del tensor
    assert address(pool.empty(SHAPE, U8)) == where


def test_contents_survive_while_a_batch_is_held() -> None:
    pool = BufferPool()
    batches = []
    for value in range(4):
        out = pool.empty(SHAPE, U8)
        out.fill(value)
        batches.append(torch.from_numpy(out))
    assert [int(b[0, 0]) for b in batches] == [0, 1, 2, 3]
    assert len({b.data_ptr() for b in batches}) == 4


def test_small_outputs_are_plain_and_the_pool_stays_under_its_cap() -> None:
    pool = BufferPool(max_bytes=3 * POOLED_BYTES)
    small = pool.empty((10, 10), U8)
    assert small.flags.owndata and pool.held_bytes() == 0
    held = [pool.empty((POOLED_BYTES + i,), U8) for i in range(5)]
    assert pool.held_bytes() <= 3 * POOLED_BYTES and len(held) == 5
    del held  # idle buffers of other sizes make room for a new size
    pool.empty((2 * POOLED_BYTES,), U8)
    assert pool.held_bytes() <= 3 * POOLED_BYTES


def test_typed_shapes_view_the_same_bytes() -> None:
    pool = BufferPool()
    out = pool.empty((POOLED_BYTES // 8, 2), np.dtype(np.float32))
    assert out.shape == (POOLED_BYTES // 8, 2) and out.dtype == np.float32
    where = address(out)
    del out
    again = pool.empty((POOLED_BYTES // 4,), np.dtype(np.float32))
    assert address(again) == where
