"""`Loader.close()` and `with loader:` shut workers down now, persistent ones too."""

from __future__ import annotations

from pathlib import Path

import loadwise
from loadwise.torch_private import live_iterator, worker_processes


def test_close_stops_persistent_workers_mid_epoch_and_keeps_the_position(
    arrays_packed: Path,
) -> None:
    loader = loadwise.loader(loadwise.open(arrays_packed, "lazy"), 64, seed=1, num_workers=2)
    batches = iter(loader)
    next(batches)
    workers = worker_processes(live_iterator(loader.dataloader))
    assert len(workers) == 2 and all(w.is_alive() for w in workers)
    loader.close()
    for w in workers:
        w.join(timeout=10)
    assert not any(w.is_alive() for w in workers)
    assert live_iterator(loader.dataloader) is None
    assert loader.state_dict()["position"] == 64  # what was yielded before close stays
    again = [b["index"] for b in loader]  # fresh workers, the next epoch
    assert sum(len(b) for b in again) == len(loader.dataset)


def test_context_manager_closes_workers(arrays_packed: Path) -> None:
    with loadwise.loader(loadwise.open(arrays_packed, "eager"), 32, num_workers=2) as loader:
        seen = sum(len(b["index"]) for b in loader)
        workers = worker_processes(live_iterator(loader.dataloader))
        assert all(w.is_alive() for w in workers)
    assert seen == len(loader.dataset)
    for w in workers:
        w.join(timeout=10)
    assert workers and not any(w.is_alive() for w in workers)


def test_close_without_workers_or_iteration_is_harmless(arrays_packed: Path) -> None:
    loader = loadwise.loader(loadwise.open(arrays_packed, "eager"), 32)
    loader.close()
    with loader:
        assert sum(len(b["index"]) for b in loader) == len(loader.dataset)
