"""The main process's side of a batch: stage times taken off, moved to the device, transformed.

Each function wraps the iterator of batches before it; the loader stacks only the ones it
needs, so an unmonitored loader without a device adds nothing per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from time import perf_counter
from typing import Any

import torch

#: Where a stage's seconds go (the monitor's ``StageClock.add``), when the loader is monitored.
AddStage = Callable[[str, float], None]


def unpacked(items: Iterator[Any], add: AddStage) -> Iterator[Any]:
    """Batches from ``(batch, {stage: seconds})`` items; the wait for each is ``fetch``."""
    while True:
        asked = perf_counter()
        try:
            batch, made = next(items)
        except StopIteration:
            return
        add("fetch", perf_counter() - asked)
        for stage, seconds in made.items():
            add(stage, seconds)
        yield batch


def on_device(
    batches: Iterator[Any],
    device: torch.device,
    non_blocking: bool,
    transform: Callable[[Any], Any] | None,
    add: AddStage | None,
) -> Iterator[Any]:
    """Each batch moved to ``device`` (``transfer``), then ``transform``\\ ed there."""
    for batch in batches:
        started = perf_counter() if add is not None else 0.0
        moved = move(batch, device, non_blocking)
        if add is not None:
            add("transfer", perf_counter() - started)
        if transform is not None:
            started = perf_counter() if add is not None else 0.0
            moved = transform(moved)
            if add is not None:
                add("transform", perf_counter() - started)
        yield moved


def move(value: Any, device: torch.device, non_blocking: bool) -> Any:
    """Tensors in ``value`` (a tensor, a dict of them, a list or tuple of them) on ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, dict):
        return {k: move(v, device, non_blocking) for k, v in value.items()}
    if isinstance(value, list | tuple) and value and isinstance(value[0], torch.Tensor):
        return type(value)(move(v, device, non_blocking) for v in value)
    return value
