"""Time a loader over whole epochs: samples/s per epoch, time to first batch, peak memory.

Used by ``loadwise bench``, ``loadwise tune`` and ``benchmarks/``. Anything iterable that
yields batches can be measured (a ``loadwise`` loader, a plain ``DataLoader``, a generator
function); each epoch is one fresh ``iter()``. Memory is the main process plus its workers,
sampled in a background thread by ``PeakMemory`` (PSS counts shared pages once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from loadwise.errors import ConfigError
from loadwise.monitoring.memory import PeakMemory


@dataclass(frozen=True)
class Measurement:
    """One contender's figures; seconds and bytes. ``private + shared = peak_pss``;
    ``peak_file`` is the file-backed part of ``peak_pss`` (memory maps, libraries): page
    cache that the kernel can drop, so ``peak_pss - peak_file`` is what the loader holds.

    ``steady_rate`` is the best samples/s of any epoch after the first (the first pays for
    starting workers and cold caches); ``epoch_end_pss`` is the tree's PSS after each epoch.
    """

    name: str
    samples_per_epoch: tuple[int, ...]
    epoch_seconds: tuple[float, ...]
    first_batch_seconds: float
    prepare_seconds: float = 0.0
    peak_pss: int = 0
    peak_private: int = 0
    peak_shared: int = 0
    baseline_pss: int = 0
    epoch_end_pss: tuple[int, ...] = ()
    disk_bytes: int = 0
    peak_file: int = 0
    steady_rate: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rates(self) -> tuple[float, ...]:
        """Samples per second of each epoch."""
        return tuple(
            n / s if s > 0 else 0.0
            for n, s in zip(self.samples_per_epoch, self.epoch_seconds, strict=True)
        )

    @property
    def best_rate(self) -> float:
        return max(self.rates, default=0.0)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["samples_per_second"] = list(self.rates)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        known = {k: v for k, v in data.items() if k != "samples_per_second"}
        for key in ("samples_per_epoch", "epoch_seconds", "epoch_end_pss"):
            known[key] = tuple(known.get(key, ()))
        return cls(**known)


def batch_size_of(batch: Any) -> int:
    """Samples in a batch: a tensor's first dimension, a dict's first field, a list's length."""
    if isinstance(batch, dict):
        batch = next(iter(batch.values()))
    elif isinstance(batch, list | tuple) and batch and not isinstance(batch[0], int | float):
        batch = batch[0]
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    return len(batch)


def measure(
    name: str,
    epochs_of: Iterable[Any] | Callable[[], Iterable[Any]],
    *,
    epochs: int = 2,
    max_seconds: float | None = None,
    prepare_seconds: float = 0.0,
    disk_bytes: int = 0,
    memory: bool = True,
    consume: Callable[[Any], None] | None = None,
    steady_seconds: float = 0.0,
) -> Measurement:
    """Iterate ``epochs`` epochs of ``epochs_of`` and time them.

    ``epochs_of`` is iterated afresh each epoch (a loader), or called for a new iterable.
    ``max_seconds`` cuts each epoch short (the rate is then over what was read): for tuning.
    ``consume`` is applied to each batch (e.g. touch the bytes), default nothing.
    ``steady_seconds``: after ``epochs``, run more epochs (at most 20 in all) until this much
    time has gone, so fast contenders get a steady rate that is more than a few milliseconds.
    """
    if epochs < 1:
        raise ConfigError(f"`epochs` must be >= 1. Found: {epochs}.")
    counts: list[int] = []
    seconds: list[float] = []
    ends: list[int] = []
    first = 0.0
    peak = PeakMemory(interval=0.05) if memory else None
    if peak is not None:
        peak.__enter__()
    try:
        epoch = 0
        while epoch < epochs or (sum(seconds) < steady_seconds and epoch < max(epochs, 20)):
            source = epochs_of() if callable(epochs_of) else epochs_of
            n, took, to_first = _one_epoch(source, max_seconds, consume)
            counts.append(n)
            seconds.append(took)
            if epoch == 0:
                first = to_first
            if peak is not None:
                ends.append(peak.sample().total_pss)
            epoch += 1
    finally:
        if peak is not None:
            peak.__exit__(None, None, None)
    rates = [n / s for n, s in zip(counts, seconds, strict=True) if s > 0]
    steady = max(rates[1:] or rates or [0.0])
    return Measurement(
        name, tuple(counts[:epochs]), tuple(seconds[:epochs]), first, prepare_seconds,
        *_memory_figures(peak), tuple(ends), disk_bytes, _file_pss(peak), steady,
    )  # fmt: skip


def _one_epoch(
    source: Iterable[Any], max_seconds: float | None, consume: Callable[[Any], None] | None
) -> tuple[int, float, float]:
    started = time.perf_counter()
    n, first = 0, 0.0
    for batch in source:
        if consume is not None:
            consume(batch)
        if n == 0:
            first = time.perf_counter() - started
        n += batch_size_of(batch)
        if max_seconds is not None and time.perf_counter() - started >= max_seconds:
            break
    return n, time.perf_counter() - started, first


def _memory_figures(peak: PeakMemory | None) -> tuple[int, int, int, int]:
    """(peak PSS, its private part, its shared part, baseline PSS) from the peak snapshot."""
    if peak is None or peak.peak is None:
        return 0, 0, 0, 0
    pss, uss = peak.peak.total_pss, peak.peak.total_uss
    return pss, uss, max(pss - uss, 0), peak.baseline_pss


def _file_pss(peak: PeakMemory | None) -> int:
    """File-backed PSS of the peak snapshot (0 where the kernel does not split PSS)."""
    if peak is None or peak.peak is None:
        return 0
    return sum(p.pss_file or 0 for p in peak.peak.processes)
