"""torch's DataLoader internals loadwise reads, checked on a real iterator with workers.

If a torch upgrade renames or reshapes one, this fails naming the attribute (and
``loadwise/torch_private.py`` is the one module to change).
"""

from __future__ import annotations

import time

import torch
from torch.utils.data import DataLoader, Dataset

from loadwise import torch_private


class Slow(Dataset):
    """Each sample takes a while, so batches are still in flight when we look."""

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> torch.Tensor:
        time.sleep(0.01)
        return torch.tensor(i)


def test_a_real_iterator_with_workers_has_what_loadwise_reads() -> None:
    loader = DataLoader(Slow(), batch_size=4, num_workers=2, persistent_workers=True)
    iterator = iter(loader)
    try:
        next(iterator)
        problems = torch_private.check(iterator)
        assert not problems, f"torch {torch.__version__} changed: " + "; ".join(problems)
        assert torch_private.live_iterator(loader) is iterator, "DataLoader `_iterator` changed"
        workers = torch_private.worker_processes(iterator)
        assert len(workers) == 2 and all(w.is_alive() for w in workers), "`_workers` changed"
        assert torch_private.worker_pids(iterator) == [w.pid for w in workers]
        in_flight = torch_private.tasks_in_flight(iterator)
        assert in_flight and set(in_flight.values()) <= {0, 1}, "`_task_info` entries changed"
        # after one batch the iterator waits for batch 1 (sent, perhaps already received out
        # of order, so not necessarily among ``in_flight``)
        assert torch_private.awaited_batch(iterator) == 1, "`_rcvd_idx` changed"
        base = torch_private.base_iterator_class()
        assert isinstance(iterator, base) and callable(base.__next__), "_BaseDataLoaderIter"
        assert torch_private.shutdown_workers(iterator)
        assert not any(w.is_alive() for w in workers), "`_shutdown_workers` left workers"
    finally:
        torch_private.shutdown_workers(iterator)
    torch_private.forget_iterator(loader)
    assert torch_private.live_iterator(loader) is None


def test_check_names_each_missing_or_changed_attribute() -> None:
    class Changed:
        _workers = ()  # a tuple, not a list
        _rcvd_idx = 0

    problems = torch_private.check(Changed())
    assert any("`_workers` is a tuple" in p for p in problems)
    assert any("no `_task_info`" in p for p in problems)
    assert any("no method `_shutdown_workers`" in p for p in problems)
    assert not any("_rcvd_idx" in p for p in problems)


def test_objects_without_workers_read_as_empty() -> None:
    plain = iter(DataLoader(range(4), batch_size=2))
    assert torch_private.worker_processes(plain) == []
    assert torch_private.worker_pids(plain) is None
    assert torch_private.tasks_in_flight(plain) == {}
    assert torch_private.awaited_batch(plain) is None
    assert not torch_private.shutdown_workers(object())
