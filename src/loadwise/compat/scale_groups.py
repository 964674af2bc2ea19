"""``group_scales_by_memory``: scales grouped so each group's batch fits a memory budget.

A group is processed at once (its scales' images and the training step over them); a scale
whose whole batch does not fit alone is split into micro-batches whose gradients add up to
the whole batch's. The cost of a scale ``s`` for ``m`` images is ``m x s^2 x
bytes_per_pixel``: give ``bytes_per_pixel`` as the step's peak per input pixel
(``measure_bytes_per_pixel`` runs one step and measures it); the default counts the float32
image alone, as the documents' estimate did. The budget is the device's free memory on a
GPU, else the bytes given (or, if none, the memory available to this process).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from loadwise.access.budget import available_memory
from loadwise.errors import ConfigError

_MIB = 2**20


@dataclass(frozen=True)
class ScaleGroup:
    """Scales processed together, ``micro_batch`` images at a time (the whole batch when it
    fits). Iterates over its scales, like the documents' lists of scales."""

    scales: tuple[int, ...]
    micro_batch: int

    def __iter__(self) -> Iterator[int]:
        return iter(self.scales)

    def __len__(self) -> int:
        return len(self.scales)


def check_scales(scales: Any) -> tuple[int, ...]:
    """Square side lengths, increasing, each once; ``(s, s)`` pairs are read as ``s``."""
    if isinstance(scales, int | str) or not isinstance(scales, Sequence) or not len(scales):
        raise ConfigError(f"`scales` is a non-empty list of side lengths. Found: {scales!r}.")
    sides = [_side(s) for s in scales]
    if len(set(sides)) != len(sides):
        twice = sorted({s for s in sides if sides.count(s) > 1})
        raise ConfigError(f"`scales` {sides} holds {twice} more than once: give each scale once.")
    if sides != sorted(sides):
        raise ConfigError(
            f"`scales` must be in increasing order: {sides}. Pass sorted(scales) = {sorted(sides)}."
        )
    return tuple(sides)


def _side(scale: Any) -> int:
    if isinstance(scale, Sequence) and len(scale) == 2 and scale[0] == scale[1]:
        scale = scale[0]
    elif isinstance(scale, Sequence) and len(scale) == 2:
        raise ConfigError(
            f"scale {tuple(scale)} is (H, W) with H != W: multi-scale batches are square, one "
            f"side length per scale. Give ints (e.g. {max(scale)}), or resize to "
            f"{tuple(scale)} with loadwise.transforms.Resize."
        )
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigError(f"a scale is a side length, an integer >= 1. Found: {scale!r}.")
    return int(scale)


def group_scales_by_memory(
    scales: Sequence[int],
    batch_size: int,
    budget_bytes: int | None = None,
    *,
    bytes_per_pixel: float = 12.0,
    device: str | torch.device | None = None,
) -> list[ScaleGroup]:
    """``scales`` in groups whose batch of ``batch_size`` fits ``budget_bytes`` (default:
    the free memory of a CUDA ``device``, else the memory available); a scale that does not
    fit at the whole batch gets a group of its own with the largest equal micro-batches."""
    sides = check_scales(scales)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"`batch_size` must be an integer >= 1. Found: {batch_size!r}.")
    if not bytes_per_pixel > 0:
        raise ConfigError(f"`bytes_per_pixel` must be positive. Found: {bytes_per_pixel!r}.")
    budget = memory_budget(budget_bytes, device)
    one = sides[-1] ** 2 * bytes_per_pixel
    if one > budget:
        raise ConfigError(
            f"the budget of {budget / _MIB:,.1f} MiB is too small for one image at the largest "
            f"scale: {sides[-1]}x{sides[-1]} at {bytes_per_pixel:g} bytes per pixel needs "
            f"{one / _MIB:,.1f} MiB. Raise the budget, or drop scale {sides[-1]}."
        )
    groups: list[ScaleGroup] = []
    current: list[int] = []
    for side in sides:
        cost = batch_size * side**2 * bytes_per_pixel
        if cost > budget:  # alone, and in micro-batches
            fits = int(budget // (side**2 * bytes_per_pixel))
            chunks = math.ceil(batch_size / fits)
            groups.append(ScaleGroup((side,), math.ceil(batch_size / chunks)))
            continue
        held = sum(batch_size * s**2 * bytes_per_pixel for s in current)
        if current and held + cost > budget:
            groups.append(ScaleGroup(tuple(current), batch_size))
            current = []
        current.append(side)
    if current:
        groups.append(ScaleGroup(tuple(current), batch_size))
    return sorted(groups, key=lambda g: g.scales[0])


def memory_budget(budget_bytes: int | None, device: str | torch.device | None) -> int:
    """``budget_bytes`` as given, else the free memory of a CUDA device (what its caching
    allocator holds unused counts as free), else the memory this process may still use."""
    if budget_bytes is not None:
        if isinstance(budget_bytes, bool) or not budget_bytes > 0:
            raise ConfigError(f"`budget_bytes` must be positive. Found: {budget_bytes!r}.")
        return int(budget_bytes)
    target = torch.device(device) if device is not None else None
    if target is not None and target.type == "cuda":
        free, _ = torch.cuda.mem_get_info(target)
        held = torch.cuda.memory_reserved(target) - torch.cuda.memory_allocated(target)
        return int(free + held)
    return available_memory()


class StepPeak:
    """The peak memory a block of code adds: ``torch.cuda.max_memory_allocated`` over its
    start on a CUDA device; on the CPU the process's peak resident size (``VmHWM``, reset
    on entry through ``/proc/self/clear_refs``) over its resident size at entry."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.start = self.peak = 0

    def __enter__(self) -> StepPeak:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            _reset_cpu_peak()
            self.start = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak = _status_kib("VmHWM") * 1024

    @property
    def added(self) -> int:
        """Bytes above the level at entry at the highest point."""
        return max(self.peak - self.start, 0)


def measure_bytes_per_pixel(step: Callable[[torch.Tensor], Any], images: torch.Tensor) -> float:
    """One ``step(images)`` (forward + backward) measured: its peak added memory plus the
    images themselves, per input pixel (``B x H x W``), for ``group_scales_by_memory``."""
    with StepPeak(images.device) as peak:
        step(images)
    pixels = images.shape[0] * images.shape[-2] * images.shape[-1]
    return (peak.added + images.numel() * images.element_size()) / pixels


def _reset_cpu_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError as exc:
        raise ConfigError(
            "cannot measure the CPU peak here: resetting the peak resident size needs Linux's "
            f"/proc/self/clear_refs ({exc}). Give `bytes_per_pixel` yourself."
        ) from exc


def _status_kib(key: str) -> int:
    found = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    if found is None:
        raise ConfigError(f"/proc/self/status has no {key}: give `bytes_per_pixel` yourself.")
    return int(found.group(1))
