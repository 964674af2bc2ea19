"""Stores: where a packed dataset's bytes live (a local folder today; object storage next).

``open_store(location)`` picks the store for a location; readers only use the
``ShardStore`` interface (``base.py``).
"""

from __future__ import annotations

from pathlib import Path

from loadwise.stores.base import ShardFile, ShardStore
from loadwise.stores.local import LocalStore


def open_store(location: str | Path | ShardStore) -> ShardStore:
    """The store for ``location``: a folder path (or an already open store)."""
    if isinstance(location, str | Path):
        return LocalStore(location)
    return location


__all__ = ["LocalStore", "ShardFile", "ShardStore", "open_store"]
