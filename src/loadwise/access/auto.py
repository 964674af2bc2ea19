"""``open``: a packed dataset in the mode asked for, or the one ``auto`` picks and explains.

``auto`` holds the data in RAM (``eager``) when it fits in a fraction of the memory this
process may use (cgroup-aware), memory-maps it (``lazy``) when it does not, and streams it
when it is remote (object storage).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, Literal, overload

from loadwise.access.base import PackedDataset
from loadwise.access.budget import eager_budget, stored_bytes
from loadwise.access.cached import DEFAULT_CACHE_BYTES, CachedDataset
from loadwise.access.eager import EagerDataset
from loadwise.access.inplace import InPlaceDataset, InPlaceStream, inplace_format, open_inplace
from loadwise.access.lazy import LazyDataset
from loadwise.access.streaming import StreamingDataset
from loadwise.errors import ConfigError, ModeError
from loadwise.format.reader import read_manifest
from loadwise.stores import ShardStore, is_url, open_store

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
    crop: int | tuple[int, int] | None = None,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    max_memory_usage: float | None = None,
    cache_dir: str | Path | None = None,
    cache_limit: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> StreamingDataset: ...


@overload
def open_dataset(
    path: str | Path,
    mode: str | LoadingMode = "auto",
    *,
    fields: Sequence[str] | None = None,
    verify: str = "first_use",
    ragged: str = "padded",
    crop: int | tuple[int, int] | None = None,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    max_memory_usage: float | None = None,
    cache_dir: str | Path | None = None,
    cache_limit: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> PackedDataset: ...


def open_dataset(
    path: str | Path,
    mode: str | LoadingMode = "auto",
    *,
    fields: Sequence[str] | None = None,
    verify: str = "first_use",
    ragged: str = "padded",
    crop: int | tuple[int, int] | None = None,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    max_memory_usage: float | None = None,
    cache_dir: str | Path | None = None,
    cache_limit: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> PackedDataset | StreamingDataset | InPlaceDataset | InPlaceStream:
    """Open the packed dataset at ``path`` in ``mode`` (one of ``MODES``); an HDF5 file, a
    Zarr store or an LMDB database is read in place (``lazy`` or ``streaming``).

    ``fields`` selects the fields samples carry (all by default); ``verify`` is when shard
    checksums are checked (``first_use``, ``open`` or ``never``); ``ragged`` is how
    variable-length arrays come out (``padded`` with ``<name>_lengths``, or a ``list`` of
    tensors); ``crop`` (height, width, or one int) cuts images to their centre while they
    decode, so batch buffers hold only the crop; ``cache_bytes`` bounds the
    ``cached`` mode's decoded images, shared by all DataLoader workers. ``max_memory_usage``
    (a fraction of available memory) is what eager data may take: ``eager`` refuses beyond
    it (default: all of it), ``auto`` holds data in RAM only within it (default 0.5).

    ``path`` may be a URL (``s3://bucket/prefix``, any fsspec scheme): shards are fetched
    ahead of use into a local cache in ``cache_dir`` (default ``$LOADWISE_CACHE/remote``)
    of at most ``cache_limit`` bytes (plus one shard), shared by every process on the
    machine; ``storage_options`` (credentials, endpoint) go to fsspec as they are. ``auto``
    streams remote data; ``lazy`` and ``cached`` need the whole dataset within the limit.
    """
    name = _mode_name(mode)
    where: str | Path | ShardStore = path
    if is_url(str(path)):
        where, name = _remote(path, name, cache_dir, cache_limit, storage_options)
    elif inplace_format(path) is not None:  # HDF5, Zarr, LMDB: read in place (access/inplace/)
        if crop is not None:
            raise ConfigError(
                f"`crop` applies to packed image fields; `{path}` is read in place. Crop "
                f"in a `batch_transform`, or pack it first."
            )
        return open_inplace(path, name, fields=fields)
    if name == "auto":
        fraction = AUTO_EAGER_FRACTION if max_memory_usage is None else max_memory_usage
        name, reason = choose_mode(path, fields, max_memory_usage=fraction)
        log.info("loadwise: auto mode chose %s: %s", name, reason)
    if name == "cached":
        return CachedDataset(
            where, fields=fields, verify=verify, ragged=ragged, crop=crop, cache_bytes=cache_bytes
        )
    if name == "streaming":
        return StreamingDataset(where, fields=fields, verify=verify, ragged=ragged, crop=crop)
    if name == "eager":
        fraction = 1.0 if max_memory_usage is None else max_memory_usage
        return EagerDataset(
            where, fields=fields, verify=verify, ragged=ragged, crop=crop, max_memory_usage=fraction
        )
    return LazyDataset(where, fields=fields, verify=verify, ragged=ragged, crop=crop)


def _remote(
    url: str | Path,
    name: str,
    cache_dir: str | Path | None,
    cache_limit: int | None,
    storage_options: Mapping[str, Any] | None,
) -> tuple[ShardStore, str]:
    """The remote store for ``url``, and the mode to open it in (``auto``: streaming)."""
    store = open_store(
        str(url), cache_dir=cache_dir, cache_limit=cache_limit, storage_options=storage_options
    )
    if name == "auto":
        name = "streaming"
        log.info(
            "loadwise: auto mode chose streaming: `%s` is remote, so shards are fetched ahead "
            "of use into the local cache (%s) and read from there in constant memory",
            url, getattr(store, "cache_dir", "?"),
        )  # fmt: skip
    if name in ("lazy", "cached"):
        manifest = read_manifest(store)
        limit = getattr(store, "cache_limit", manifest.num_bytes)
        if limit < manifest.num_bytes:
            raise ModeError(
                f"{name} mode maps every shard of `{url}` for as long as it is open, so the "
                f"whole dataset ({manifest.num_bytes:,} bytes) must fit `cache_limit` "
                f"({limit:,}). Use mode='streaming', or raise `cache_limit`."
            )
    return store, name


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
