"""``verify``: check every shard of a packed dataset against its size and checksum."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loadwise.errors import IntegrityError
from loadwise.format.reader import check_layout, load_manifest, verify_file
from loadwise.stores import open_store


@dataclass(frozen=True)
class ShardProblem:
    """One damaged shard and what is wrong with it."""

    shard: str
    problem: str


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of ``verify``: which shards were checked and which are damaged."""

    path: Path
    shards_checked: int
    bytes_checked: int
    problems: tuple[ShardProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(path: str | Path) -> VerifyReport:
    """Hash every shard and compare with the manifest; a damaged manifest raises at once."""
    store = open_store(path)
    manifest = load_manifest(store)
    problems = []
    for shard in manifest.shards:
        try:
            check_layout(shard, manifest.fields)
            verify_file(store, shard)
        except IntegrityError as exc:
            problems.append(ShardProblem(shard.name, str(exc)))
    location = Path(store.location)
    return VerifyReport(location, len(manifest.shards), manifest.num_bytes, tuple(problems))
