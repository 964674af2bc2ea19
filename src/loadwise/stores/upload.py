"""``pack`` to object storage: a finished staging folder uploaded shards first, manifest last.

A reader opens a dataset through its manifest, so until the manifest is there nothing opens,
and once it is there every shard it names is complete (each upload is checked by size).
Replacing a dataset removes its manifest first, so no reader pairs the old manifest with
new shards; shards the new manifest does not name are removed afterwards.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loadwise.errors import PackError
from loadwise.stores.base import MANIFEST_NAME
from loadwise.stores.filesystem import _filesystem, _short
from loadwise.stores.transfer import StoreError

_PARALLEL = 4


def check_remote_dest(url: str, storage_options: Mapping[str, Any], overwrite: bool) -> None:
    """Refuse to pack over an existing dataset at ``url`` unless ``overwrite``, or into a
    bucket that is missing or denied (before anything is packed)."""
    fs = _filesystem(url, storage_options)
    exists = MANIFEST_NAME in _call(url, lambda: _names(fs, url))  # a missing bucket: now
    if exists and not overwrite:
        raise PackError(
            f"destination `{url}` holds a dataset; pass overwrite=True (`--overwrite`) to "
            f"replace it."
        )


def upload(staging: Path, url: str, storage_options: Mapping[str, Any], overwrite: bool) -> None:
    """Put the shards of ``staging`` at ``url`` (in parallel), then its manifest."""
    fs = _filesystem(url, storage_options)
    manifest = f"{url}/{MANIFEST_NAME}"
    old = set(_call(url, lambda: _names(fs, url)))
    if MANIFEST_NAME in old:
        if not overwrite:
            raise PackError(
                f"destination `{url}` appeared while packing; another process wrote it. Pass "
                f"overwrite=True to replace it."
            )
        _call(url, lambda: fs.rm_file(manifest))
    shards = sorted(p for p in staging.iterdir() if p.suffix == ".arrow")
    with concurrent.futures.ThreadPoolExecutor(_PARALLEL) as pool:
        for done in pool.map(lambda p: _put(fs, p, f"{url}/{p.name}"), shards):
            del done
    _call(url, lambda: fs.put_file(str(staging / MANIFEST_NAME), manifest))
    for stale in old - {p.name for p in shards} - {MANIFEST_NAME}:
        if stale.endswith(".arrow"):
            _call(url, lambda s=stale: fs.rm_file(f"{url}/{s}"))


def _put(fs: Any, path: Path, url: str) -> None:
    _call(url, lambda: fs.put_file(str(path), url))
    size = _call(url, lambda: fs.size(url))
    if size != path.stat().st_size:
        raise StoreError(
            f"uploading `{path.name}` to `{url}` left {size:,} of {path.stat().st_size:,} "
            f"bytes; run the pack again."
        )


def _names(fs: Any, url: str) -> list[str]:
    try:
        return [str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(url, detail=False)]
    except FileNotFoundError as exc:
        if "bucket" in str(exc).lower():
            raise
        return []


def _call(url: str, work: Any) -> Any:
    """``work()``; a storage failure becomes a ``StoreError`` naming ``url``."""
    try:
        return work()
    except (PackError, StoreError):
        raise
    except Exception as exc:  # noqa: BLE001  # each backend raises its own
        raise StoreError(
            f"cannot write `{url}`: {_short(exc)}. Check the bucket, the credentials and the "
            f"endpoint in `storage_options`."
        ) from None
