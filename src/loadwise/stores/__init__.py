"""Stores: where a packed dataset's bytes live (a local folder, or object storage through
fsspec with a bounded local shard cache).

``open_store(location)`` picks the store for a location by its scheme; readers only use the
``ShardStore`` interface (``base.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loadwise.stores.base import ShardFile, ShardStore
from loadwise.stores.local import LocalStore


def open_store(
    location: str | Path | ShardStore,
    *,
    cache_dir: str | Path | None = None,
    cache_limit: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> ShardStore:
    """The store for ``location``: a URL (``s3://bucket/prefix``, any fsspec scheme but
    ``file://``) is read through a shard cache in ``cache_dir`` of ``cache_limit`` bytes,
    with ``storage_options`` passed to fsspec; a folder path is read in place; a store is
    returned as is."""
    if isinstance(location, str) and is_url(location):
        if location.startswith("file://"):
            return LocalStore(location.removeprefix("file://"))
        from loadwise.stores.remote import RemoteStore

        return RemoteStore(
            location, cache_dir=cache_dir, cache_limit=cache_limit, storage_options=storage_options
        )
    if isinstance(location, str | Path):
        return LocalStore(location)
    return location


def is_url(location: object) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and _URL.match(location) is not None


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


__all__ = ["LocalStore", "ShardFile", "ShardStore", "is_url", "open_store"]
