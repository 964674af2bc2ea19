"""``DataLoaderConfig``: every loader option in one frozen value, with checked ranges."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch.utils.data import Sampler

from loadwise.access.budget import check_fraction
from loadwise.errors import ConfigError
from loadwise.sampling.scales import Progressive, RandomScales, ScaleSchedule


@dataclass(frozen=True)
class DataLoaderConfig:
    """How ``loadwise.loader`` builds its ``torch.utils.data.DataLoader``.

    ``None`` means "decide from the machine": pin memory only when CUDA is available and the
    batches go to a CUDA device, persistent workers whenever there are workers.
    ``memory_efficient`` fetches each batch with one gather per field (``get_batch``)
    instead of one ``__getitem__`` per sample. ``generator_seed`` fixes the sample order.
    ``enable_monitoring`` times every batch and samples memory (``Loader.monitor``);
    ``log_loading_stats`` also logs them at the end of each epoch.
    ``timeout`` (seconds, 0 = none) bounds the wait for one batch from a worker.
    ``max_memory_usage`` (a fraction of available memory, None = no check) refuses an
    eager dataset whose data exceeds that share of the memory there was before it loaded.
    ``collate_fn`` receives the samples of one batch, fetched with one ``__getitems__`` call
    where the dataset has ``get_batch`` (one gather), else one ``__getitem__`` each.
    ``batch_transform`` (``batch -> batch``) runs once per gathered batch: where it is made
    (a worker, or the main process with 0 workers), or on ``device`` after the move.
    ``pad_ranks``: with ``torch.distributed``, ranks get equal shares by repeating the first
    samples of the epoch (default) or, when False, by dropping the last few.
    ``bucket_by_length`` groups samples of similar length (a dataset's variable-length
    field, or its ``sample_lengths()``) into batches: less padding, same seeded resumability.
    ``scales`` (``loadwise.sampling.scales.Progressive`` or ``RandomScales``) gives each
    batch a side from ``(seed, epoch, batch)`` (and, with ``keep_pixels``, a size): batches
    carry ``scale`` and ``epoch``; a ``transforms.Resize()`` batch transform applies it.
    """

    batch_size: int = 32
    num_workers: int = 0
    pin_memory: bool | None = None
    persistent_workers: bool | None = None
    prefetch_factor: int | None = None
    drop_last: bool = False
    shuffle: bool = True
    collate_fn: Callable[[Any], Any] | None = None
    memory_efficient: bool = True
    pin_memory_device: str = ""
    non_blocking: bool = True
    generator_seed: int = 0
    custom_sampler: Sampler[Any] | None = None
    custom_batch_sampler: Sampler[Any] | None = None
    enable_monitoring: bool = False
    log_loading_stats: bool = False
    device: str | None = None
    max_memory_usage: float | None = None
    timeout: float = 0.0
    pad_ranks: bool = True
    batch_transform: Callable[[Any], Any] | None = None
    bucket_by_length: bool = False
    scales: ScaleSchedule | None = None

    def __post_init__(self) -> None:
        _at_least("batch_size", self.batch_size, 1)
        if self.max_memory_usage is not None:
            check_fraction("max_memory_usage", self.max_memory_usage)
        if not _number(self.timeout) or not self.timeout >= 0:
            raise ConfigError(f"`timeout` is in seconds, >= 0 (0 = none). Found: {self.timeout!r}.")
        _at_least("num_workers", self.num_workers, 0)
        if self.prefetch_factor is not None:
            _at_least("prefetch_factor", self.prefetch_factor, 1)
        if self.custom_sampler is not None and self.custom_batch_sampler is not None:
            raise ConfigError("pass `custom_sampler` or `custom_batch_sampler`, not both.")
        _at_least("generator_seed", self.generator_seed, 0)
        if self.generator_seed >= 2**64:
            raise ConfigError(
                f"`generator_seed` (`seed`) must be below 2**64 (torch's generator takes 64 "
                f"bits). Found: {self.generator_seed!r}."
            )
        for name in _FLAGS:
            _flag(name, getattr(self, name), optional=name in ("pin_memory", "persistent_workers"))
        for name in ("collate_fn", "batch_transform"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise ConfigError(
                    f"`{name}` must be a callable or None. Found: {getattr(self, name)!r}."
                )
        _check_device(self.device)
        _check_scales(self.scales, self.drop_last)
        if self.bucket_by_length and self.scales is not None:
            raise ConfigError(
                "pass `bucket_by_length` (batches of similar lengths) or `scales` (a side per "
                "batch), not both: each decides how an epoch is cut into batches."
            )

    def with_options(self, **options: Any) -> DataLoaderConfig:
        """A copy with some options changed; unknown names are refused with the valid ones."""
        valid = {f.name for f in fields(self)}
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ConfigError(
                f"unknown loader option(s) {unknown}; valid: {', '.join(sorted(valid))}."
            )
        return replace(self, **options)

    @property
    def uses_cuda(self) -> bool:
        return self.device is not None and torch.device(self.device).type == "cuda"

    @property
    def resolved_pin_memory(self) -> bool:
        if self.pin_memory is None:
            return self.uses_cuda and torch.cuda.is_available()
        return self.pin_memory

    @property
    def resolved_persistent_workers(self) -> bool:
        if self.persistent_workers is None:
            return self.num_workers > 0
        return self.persistent_workers and self.num_workers > 0


#: The options that are True or False (the first two may also be None: decided here).
_FLAGS = (
    "pin_memory", "persistent_workers", "drop_last", "shuffle", "memory_efficient",
    "non_blocking", "enable_monitoring", "log_loading_stats", "pad_ranks",
)  # fmt: skip


def _at_least(name: str, value: int, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(f"`{name}` must be an integer >= {low}. Found: {value!r}.")


def _flag(name: str, value: Any, optional: bool = False) -> None:
    """True or False (a string such as "no" is not: it would count as True)."""
    if not isinstance(value, bool) and not (optional and value is None):
        allowed = "True, False or None" if optional else "True or False"
        raise ConfigError(f"`{name}` must be {allowed}. Found: {value!r}.")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_device(device: Any) -> None:
    """A device torch knows and this machine has (``cuda`` needs CUDA)."""
    if device is None:
        return
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"`device` must be a torch device such as 'cpu' or 'cuda:0'. Found: {device!r} ({exc})."
        ) from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"`device={device!r}` but CUDA is not available here (torch.cuda.is_available() is "
            f"False: no GPU, or a CPU-only torch build). Pass device=None or 'cpu'."
        )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"`device={device!r}` but MPS is not available here. Pass 'cpu'.")


def _check_scales(scales: Any, drop_last: bool) -> None:
    if scales is not None and not isinstance(scales, Progressive | RandomScales):
        raise ConfigError(
            f"`scales` is a loadwise.sampling.scales.Progressive or RandomScales. Found: "
            f"{scales!r}."
        )
    if drop_last and isinstance(scales, RandomScales) and scales.keep_pixels:
        raise ConfigError(
            "`drop_last` with `RandomScales(keep_pixels=True)`: batch sizes vary, so there "
            "is no full size to drop short batches by. Pass drop_last=False."
        )
