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
from loadwise.access.budget import eager_budget, stored_bytes
from loadwise.access.cached import DEFAULT_CACHE_BYTES, CachedDataset
from loadwise.access.eager import EagerDataset
from loadwise.access.inplace import InPlaceDataset, InPlaceStream, inplace_format, open_inplace
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
    ragged: str = "padded",
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    max_memory_usage: float | None = None,
) -> StreamingDataset: ...


@overload
def open_dataset(
    path: str | Path,
    mode: str | LoadingMode = "auto",
    *,
    fields: Sequence[str] | None = None,
    verify: str = "first_use",
    ragged: str = "padded",
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    max_memory_usage: float | None = None,
) -> PackedDataset: ...


def open_dataset(
    path: str | Path,
    mode: str | LoadingMode = "auto",
    *,
    fields: Sequence[str] | None = None,
    verify: str = "first_use",
    ragged: str = "padded",
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    max_memory_usage: float | None = None,
) -> PackedDataset | StreamingDataset | InPlaceDataset | InPlaceStream:
    """Open the packed dataset at ``path`` in ``mode`` (one of ``MODES``); an HDF5 file, a
    Zarr store or an LMDB database is read in place (``lazy`` or ``streaming``).

    ``fields`` selects the fields samples carry (all by default); ``verify`` is when shard
    checksums are checked (``first_use``, ``open`` or ``never``); ``ragged`` is how
    variable-length arrays come out (``padded`` with ``<name>_lengths``, or a ``list`` of
    tensors); ``cache_bytes`` bounds the
    ``cached`` mode's decoded images, shared by all DataLoader workers. ``max_memory_usage``
    (a fraction of available memory) is what eager data may take: ``eager`` refuses beyond
    it (default: all of it), ``auto`` holds data in RAM only within it (default 0.5).
    """
    name = _mode_name(mode)
    if inplace_format(path) is not None:  # HDF5, Zarr, LMDB: read in place (access/inplace/)
        return open_inplace(path, name, fields=fields)
    if name == "auto":
        fraction = AUTO_EAGER_FRACTION if max_memory_usage is None else max_memory_usage
        name, reason = choose_mode(path, fields, max_memory_usage=fraction)
        log.info("loadwise: auto mode chose %s: %s", name, reason)
    if name == "cached":
        return CachedDataset(
            path, fields=fields, verify=verify, ragged=ragged, cache_bytes=cache_bytes
        )
    if name == "streaming":
        return StreamingDataset(path, fields=fields, verify=verify, ragged=ragged)
    if name == "eager":
        fraction = 1.0 if max_memory_usage is None else max_memory_usage
        return EagerDataset(
            path, fields=fields, verify=verify, ragged=ragged, max_memory_usage=fraction
        )
    return LazyDataset(path, fields=fields, verify=verify, ragged=ragged)


def choose_mode(
    path: str | Path,
    fields: Sequence[str] | None = None,
    *,
    max_memory_usage: float = AUTO_EAGER_FRACTION,
) -> tuple[str, str]:
    """The mode ``auto`` picks here, and why: eager if the data fits in ``max_memory_usage``
    of the available memory, else lazy."""
    manifest = read_manifest(path)
    selected = manifest.fields if fields is None else [manifest.field(f) for f in fields]
    fits, figures = eager_budget(stored_bytes(manifest, selected), max_memory_usage)
    if fits:
        return "eager", f"{figures}, so it is held in shared RAM"
    return "lazy", f"{figures}, so it is memory-mapped instead"


def _mode_name(mode: str | LoadingMode) -> str:
    value = mode.value if isinstance(mode, LoadingMode) else str(mode).lower()
    if value not in MODES:
        raise ModeError(f"unknown mode {mode!r}; valid modes are: {', '.join(MODES)}.")
    return value


__all__ = ["AUTO_EAGER_FRACTION", "MODES", "LoadingMode", "choose_mode", "open_dataset"]
