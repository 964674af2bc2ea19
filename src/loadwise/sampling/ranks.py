"""Who am I: this process's ``torch.distributed`` rank and its DataLoader worker slot."""

from __future__ import annotations

import torch.distributed as dist
from torch.utils.data import get_worker_info


def distributed_rank() -> tuple[int, int]:
    """``(rank, world_size)`` of ``torch.distributed``, or ``(0, 1)`` when not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def worker_slot() -> tuple[int, int]:
    """``(worker_id, num_workers)`` inside a DataLoader worker, ``(0, 1)`` in the main process."""
    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)
