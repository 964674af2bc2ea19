"""Every read of ``torch.utils.data`` internals loadwise relies on, as small named functions.

torch keeps no public API for a DataLoader's worker processes, the batches they hold or its
live iterator, yet naming a dead worker and its samples (``loading/faults.py``), restarting
workers after a death (``loading/build.py``) and labelling workers' memory (``monitoring``)
need them. Reading them here only means a torch upgrade that renames one breaks one module,
and ``check`` (run by ``tests/unit/test_torch_private.py`` on a real iterator with workers)
names the attribute that changed. Nothing here imports torch until it is needed.
"""

from __future__ import annotations

from typing import Any

#: Attributes of a multi-process DataLoader iterator read here, with the type each must have.
ITERATOR_ATTRIBUTES: dict[str, type | tuple[type, ...]] = {
    "_workers": list,  # worker processes, in worker-id order
    "_task_info": dict,  # batch number -> (worker id,) while in flight, (worker id, data) after
    "_rcvd_idx": int,  # the batch number the iterator waits for next
}
#: Methods of that iterator called here.
ITERATOR_METHODS = ("_shutdown_workers",)


def live_iterator(dataloader: Any) -> Any:
    """The iterator a DataLoader keeps between epochs (persistent workers), else None."""
    return getattr(dataloader, "_iterator", None)


def forget_iterator(dataloader: Any) -> None:
    """Make the DataLoader start fresh workers at its next epoch (after its workers died)."""
    if hasattr(dataloader, "_iterator"):
        dataloader._iterator = None


def worker_processes(iterator: Any) -> list[Any]:
    """The worker processes of a DataLoader iterator, in worker-id order ([] without workers)."""
    return list(getattr(iterator, "_workers", None) or [])


def worker_pids(iterator: Any) -> list[int] | None:
    """Pids of the iterator's workers in worker-id order; None if it has no worker list."""
    workers = getattr(iterator, "_workers", None)
    if not workers:
        return None
    return [int(w.pid) for w in workers if getattr(w, "pid", None) is not None]


def tasks_in_flight(iterator: Any) -> dict[int, int]:
    """Batch number -> worker id of each batch sent to a worker and not yet received."""
    tasks = dict(getattr(iterator, "_task_info", None) or {})
    return {number: int(info[0]) for number, info in tasks.items() if len(info) == 1}


def awaited_batch(iterator: Any) -> int | None:
    """The batch number the iterator is waiting for, if it is one still in flight."""
    awaited = getattr(iterator, "_rcvd_idx", None)
    tasks = getattr(iterator, "_task_info", None) or {}
    return awaited if isinstance(awaited, int) and awaited in tasks else None


def shutdown_workers(iterator: Any) -> bool:
    """Stop the iterator's remaining workers; False if it has none to stop."""
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if not callable(shutdown):
        return False
    shutdown()
    return True


def base_iterator_class() -> Any:
    """The class every DataLoader iterator derives from (``loadwise watch`` times its ``next``)."""
    from torch.utils.data import dataloader

    return dataloader._BaseDataLoaderIter


def check(iterator: Any) -> list[str]:
    """What a multi-process DataLoader iterator lacks of what this module reads (empty: ok).

    Each problem names the attribute and what was expected, so a torch upgrade that changed
    one fails loudly in the test suite instead of quietly degrading error messages.
    """
    problems = []
    for name, kind in ITERATOR_ATTRIBUTES.items():
        if not hasattr(iterator, name):
            problems.append(f"DataLoader iterator has no `{name}` any more")
        elif not isinstance(getattr(iterator, name), kind):
            found = type(getattr(iterator, name)).__name__
            problems.append(f"DataLoader iterator `{name}` is a {found}, expected {kind}")
    problems += [
        f"DataLoader iterator has no method `{name}` any more"
        for name in ITERATOR_METHODS
        if not callable(getattr(iterator, name, None))
    ]
    return problems
