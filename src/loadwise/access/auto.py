"""``open``: a packed dataset in the mode asked for, or the one ``auto`` picks and explains.

``auto`` holds the data in RAM (``eager``) when it fits in a fraction of the memory this
process may use (cgroup-aware), and memory-maps it (``lazy``) when it does not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Literal, overload

from loadwise.access.base import PackedDataset
from loadwise.access.budget import available_memory, check_fraction, stored_bytes
from loadwise.access.cached import DEFAULT_CACHE_BYTES, CachedDataset
from loadwise.access.eager import EagerDataset
from loadwise.access.lazy import LazyDataset
from loadwise.access.streaming import StreamingDataset
from loadwise.errors import ModeError
from loadwise.format.reader import read_manifest

log = logging.getLogger("loadwise")

#: Share of available memory that ``auto`` lets eager data take.
AUTO_EAGER_FRACTION = 0.5


class LoadingMode(str, Enum):
    """Where a dataset's bytes live while training."""

    AUTO = "auto"
    EAGER = "eager"
    LAZY = "lazy"
    CACHED = "cached"
    STREAMING = "streaming"


MODES = tuple(m.value for m in LoadingMode)


@overload
def open_dataset(  # type: ignore[overload-overlap]  # "streaming" is also a str
    path: str | Path,
    mode: Literal["streaming", LoadingMode.STREAMING],
    *,
    fields: Sequence[str] | None = None,
    verify: str = "first_use",
    cache_bytes: int = DEFAULT_CACHE_BYTES,
) -> StreamingDataset: ...


@overload
def open_dataset(
    path: str | Path,
    mode: str | LoadingMode = "auto",
    *,
    fields: Sequence[str] | None = None,
    verify: str = "first_use",
    cache_bytes: int = DEFAULT_CACHE_BYTES,
) -> PackedDataset: ...


def open_dataset(
    path: str | Path,
    mode: str | LoadingMode = "auto",
    *,
    fields: Sequence[str] | None = None,
    verify: str = "first_use",
    cache_bytes: int = DEFAULT_CACHE_BYTES,
) -> PackedDataset | StreamingDataset:
    """Open the packed dataset at ``path`` in ``mode`` (one of ``MODES``).

    ``fields`` selects the fields samples carry (all by default); ``verify`` is when shard
    checksums are checked (``first_use``, ``open`` or ``never``); ``cache_bytes`` bounds the
    ``cached`` mode's LRU in each process.
    """
    name = _mode_name(mode)
    if name == "auto":
        name, reason = choose_mode(path, fields)
        log.info("loadwise: auto mode chose %s: %s", name, reason)
    if name == "cached":
        return CachedDataset(path, fields=fields, verify=verify, cache_bytes=cache_bytes)
    if name == "streaming":
        return StreamingDataset(path, fields=fields, verify=verify)
    kind = {"eager": EagerDataset, "lazy": LazyDataset}[name]
    return kind(path, fields=fields, verify=verify)


def choose_mode(
    path: str | Path,
    fields: Sequence[str] | None = None,
    *,
    max_memory_usage: float = AUTO_EAGER_FRACTION,
) -> tuple[str, str]:
    """The mode ``auto`` picks here, and why: eager if the data fits in ``max_memory_usage``
    of the available memory, else lazy."""
    check_fraction("max_memory_usage", max_memory_usage)
    manifest = read_manifest(path)
    selected = manifest.fields if fields is None else [manifest.field(f) for f in fields]
    needed, available = stored_bytes(manifest, selected), available_memory()
    budget = max_memory_usage * available
    figures = (
        f"the data is {needed / 2**20:,.1f} MiB and {max_memory_usage:.0%} of the "
        f"{available / 2**20:,.0f} MiB available (cgroup-aware) is {budget / 2**20:,.0f} MiB"
    )
    if needed <= budget:
        return "eager", f"{figures}, so it is held in shared RAM"
    return "lazy", f"{figures}, so it is memory-mapped instead"


def _mode_name(mode: str | LoadingMode) -> str:
    value = mode.value if isinstance(mode, LoadingMode) else str(mode).lower()
    if value not in MODES:
        raise ModeError(f"unknown mode {mode!r}; valid modes are: {', '.join(MODES)}.")
    return value


__all__ = ["AUTO_EAGER_FRACTION", "MODES", "LoadingMode", "choose_mode", "open_dataset"]
