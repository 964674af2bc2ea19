"""Every rank's loader state in one call, for an exact elastic resume; a dead rank is a clear
error within ``timeout``, never a hang.

``Loader.load_state_dict`` takes one rank's state (ranks that step together, as under DDP,
stand at the same position) or every rank's: ``all_states(loader)`` gathers them, called by
every rank at the same step like any collective. It runs on its own gloo group (CPU objects,
whatever the training backend), after a monitored barrier that names the ranks that did
not answer.
"""

from __future__ import annotations

import datetime
from typing import Any

from loadwise.errors import LoadwiseError

_GROUPS: dict[tuple[int, float], Any] = {}


class RankError(LoadwiseError, RuntimeError):
    """A ``torch.distributed`` rank died or stopped answering; names the ranks if known."""


def all_states(loader: Any, *, timeout: float = 60.0) -> list[dict[str, Any]]:
    """``loader.state_dict()`` of every rank, in rank order (just this one's when not
    distributed); ``RankError`` naming the missing ranks if one does not answer in time."""
    import torch.distributed as dist

    state = loader.state_dict()
    if not (dist.is_available() and dist.is_initialized()):
        return [state]
    world = dist.get_world_size()
    group = _group(dist, world, timeout)
    gathered: list[Any] = [None] * world
    try:
        if dist.get_rank() == 0:  # rank 0 learns who is missing; the others hear it failed
            dist.monitored_barrier(
                group, timeout=datetime.timedelta(seconds=timeout), wait_all_ranks=True
            )
        else:
            dist.monitored_barrier(group, timeout=datetime.timedelta(seconds=timeout))
        dist.all_gather_object(gathered, state, group=group)
    except RuntimeError as exc:
        raise RankError(
            f"gathering the loader states of {world} ranks failed within {timeout:g} s: "
            f"{_first_line(exc)}. A rank died or hung; restart the job (it resumes from the "
            f"last checkpoint, on any number of ranks)."
        ) from None
    return gathered


def _group(dist: Any, world: int, timeout: float) -> Any:
    """A gloo group over every rank (made once, by every rank at its first call)."""
    key = (world, timeout)
    if key not in _GROUPS:
        _GROUPS[key] = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout))
    return _GROUPS[key]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ = ["RankError", "all_states"]
