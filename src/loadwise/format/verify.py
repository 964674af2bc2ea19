"""``verify``: check every shard of a packed dataset against its size and checksum."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadwise.errors import IntegrityError
from loadwise.format.reader import check_layout, load_manifest, verify_file
from loadwise.stores import ShardStore, is_url, open_store


@dataclass(frozen=True)
class ShardProblem:
    """One damaged shard and what is wrong with it."""

    shard: str
    problem: str


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of ``verify``: which shards were checked and which are damaged."""

    path: Path | str  # a folder, or the URL of a dataset in object storage
    shards_checked: int
    bytes_checked: int
    problems: tuple[ShardProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    path: str | Path | ShardStore,
    *,
    storage_options: Mapping[str, Any] | None = None,
    cache_dir: str | Path | None = None,
) -> VerifyReport:
    """Hash every shard and compare with the manifest; a damaged manifest raises at once.

    ``path`` may be a URL (``s3://bucket/prefix``): each shard is then fetched (checked
    block by block as it arrives) into the shard cache in ``cache_dir``, with fsspec's
    ``storage_options`` (credentials, endpoint), and hashed whole there."""
    store = open_store(path, cache_dir=cache_dir, storage_options=storage_options)
    manifest = load_manifest(store)
    problems = []
    for shard in manifest.shards:
        try:
            check_layout(shard, manifest.fields)
            verify_file(store, shard)
        except IntegrityError as exc:
            problems.append(ShardProblem(shard.name, str(exc)))
    location = store.location if is_url(store.location) else Path(store.location)
    return VerifyReport(location, len(manifest.shards), manifest.num_bytes, tuple(problems))
