"""What every benchmark loop does with a batch, as a training step does: read all of it.

A step copies each tensor of its batch to the device, so every page is read. A loop that
only drops its batches never faults in the pages of a batch that torch's workers put in
shared memory: the main process maps the segment without touching it and the worker has
unmapped it, so PSS over the tree misses that batch while ``/proc/meminfo`` Shmem shows it
(36.8 MiB for the per-file PIL peer with 2 workers, of which PSS saw 18). Reading one byte
a page costs microseconds a batch and makes every contender's batches count alike.
"""

from __future__ import annotations

from typing import Any

import torch

PAGE = 4096


def read_every_page(batch: Any) -> None:
    """Read one byte of each page of every tensor in ``batch`` (dicts, lists, tuples)."""
    _walk(batch)


def _walk(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return _read(batch)
    if isinstance(batch, dict):
        return sum(_walk(value) for value in batch.values())
    if isinstance(batch, (list, tuple)):
        return sum(_walk(value) for value in batch)
    return 0


def _read(tensor: torch.Tensor) -> int:
    if tensor.numel() == 0:
        return 0
    strides = tensor.stride()
    order = sorted(range(tensor.dim()), key=lambda d: -strides[d])
    flat = tensor.permute(*order).reshape(-1)  # a view when the tensor is dense in memory
    return int(flat[:: max(1, PAGE // tensor.element_size())].sum())
