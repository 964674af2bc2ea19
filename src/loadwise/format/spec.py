"""The manifest: what a packed dataset holds, where each field's bytes lie, and their checksums.

Data-only: frozen dataclasses, their JSON form and its validation. The byte layout of the
shards is described in ``format/README.md``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from loadwise.errors import FormatError, IntegrityError
from loadwise.format.fields import FieldSpec, field_from_dict
from loadwise.stores.base import MANIFEST_NAME as MANIFEST_NAME  # the format names it

FORMAT_NAME = "loadwise"
FORMAT_VERSION = 3
#: Shards are checksummed in blocks of this many bytes as well as whole, so the first read of
#: a sample hashes about a MiB, not the whole shard (time to first batch stays small).
BLOCK_BYTES = 2**20

_MAX_BYTES = 2**48
#: Totals over all shards: far beyond any real dataset, far below int64's range.
_MAX_TOTAL_SAMPLES = 2**48
_MAX_TOTAL_BYTES = 2**60
#: Manifest versions this loadwise reads: 2 (kinds array/bytes/string, images as bytes with
#: ``codec: image``) and 3 (a kind per class, ``fields/``).
READABLE_VERSIONS = (2, FORMAT_VERSION)


@dataclass(frozen=True)
class BufferSpan:
    """Where one buffer of one field lies inside a shard file."""

    offset: int
    length: int


@dataclass(frozen=True)
class ShardSpec:
    """One shard file: its sample count, size, checksums (whole and per block), layout."""

    name: str
    num_samples: int
    num_bytes: int
    xxh3_64: str
    buffers: Mapping[str, Mapping[str, BufferSpan]]
    block_bytes: int = BLOCK_BYTES
    block_xxh3: tuple[str, ...] = ()

    def block_span(self, block: int) -> tuple[int, int]:
        """``(offset, length)`` of block number ``block`` in the file."""
        start = block * self.block_bytes
        return start, min(self.block_bytes, self.num_bytes - start)


def block_checksums(data: memoryview | bytes, block_bytes: int = BLOCK_BYTES) -> tuple[str, ...]:
    """xxh3-64 of each ``block_bytes`` piece of ``data`` (the last one may be shorter)."""
    view = memoryview(data).cast("B")
    return tuple(
        xxhash.xxh3_64_hexdigest(view[i : i + block_bytes])
        for i in range(0, len(view), block_bytes)
    )


@dataclass(frozen=True)
class Skipped:
    """A source item that ``pack`` left out, and why."""

    item: str
    reason: str


@dataclass(frozen=True)
class Manifest:
    """Everything a reader needs to know about a packed dataset."""

    fields: tuple[FieldSpec, ...]
    shards: tuple[ShardSpec, ...]
    source: Mapping[str, Any] = field(default_factory=dict)
    skipped: tuple[Skipped, ...] = ()
    created_by: str = ""
    version: int = FORMAT_VERSION
    #: Which ``pack`` wrote the shards (also in their names), so a reader never mixes the
    #: shards of two packs of one destination; empty in datasets packed before it existed.
    generation: str = ""

    @functools.cached_property
    def num_samples(self) -> int:  # cached: ``len(dataset)`` asks on every batch
        return sum(s.num_samples for s in self.shards)

    @functools.cached_property
    def num_bytes(self) -> int:
        return sum(s.num_bytes for s in self.shards)

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        names = ", ".join(f.name for f in self.fields)
        raise FormatError(f"no field `{name}` in this dataset; its fields are: {names}.")

    def shard_starts(self) -> np.ndarray:
        """Global index of the first sample of each shard, plus the total at the end."""
        counts = [s.num_samples for s in self.shards]
        return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)


def manifest_to_dict(manifest: Manifest) -> dict[str, Any]:
    """The manifest's JSON body (fields as their kinds describe themselves)."""
    body = {
        "version": manifest.version,
        "created_by": manifest.created_by,
        "fields": [f.to_dict() for f in manifest.fields],
        "shards": [asdict(s) for s in manifest.shards],
        "source": dict(manifest.source),
        "skipped": [asdict(s) for s in manifest.skipped],
    }
    return body | ({"generation": manifest.generation} if manifest.generation else {})


def manifest_to_json(manifest: Manifest) -> str:
    """Serialise with an embedded checksum of the body, so a damaged manifest is detected."""
    body = _canonical(manifest_to_dict(manifest))
    digest = xxhash.xxh3_64_hexdigest(body.encode())
    doc = {"format": FORMAT_NAME, "xxh3_64": digest, "manifest": json.loads(body)}
    return json.dumps(doc, indent=1, sort_keys=True)


def manifest_from_json(text: str, where: Path | str) -> Manifest:
    """Parse and check a manifest; every failure names ``where`` and says what to do."""
    try:
        doc = json.loads(text)
    except RecursionError:
        raise IntegrityError(
            f"manifest `{where}` is nested too deeply to be one: {_REPACK}"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"manifest `{where}` is not valid JSON ({exc}): {_REPACK}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise FormatError(f"`{where}` is not a loadwise manifest (no `format: loadwise`).")
    body = doc.get("manifest")
    digest = _checksum(body) if isinstance(body, dict) else None
    if not isinstance(body, dict) or digest is None or digest != doc.get("xxh3_64"):
        raise IntegrityError(f"manifest `{where}` fails its checksum: {_REPACK}")
    version = body.get("version")
    if version not in READABLE_VERSIONS:
        raise FormatError(
            f"manifest `{where}` has format version {version!r}; this loadwise reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}. Upgrade loadwise, or re-pack the data "
            f"with this version."
        )
    try:
        return _manifest_from_dict(body)
    except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise FormatError(f"manifest `{where}` is malformed ({exc!r}): {_REPACK}") from exc


_REPACK = "re-run `loadwise pack`, or `loadwise verify` to see what else is damaged."


def _canonical(body: Mapping[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def _checksum(body: Mapping[str, Any]) -> str | None:
    """The body's checksum; None for a body too deeply nested to serialise."""
    try:
        return xxhash.xxh3_64_hexdigest(_canonical(body).encode())
    except (RecursionError, ValueError):
        return None


def _manifest_from_dict(body: Mapping[str, Any]) -> Manifest:
    upgrade = _field_v2 if body["version"] == 2 else dict
    fields = tuple(field_from_dict(upgrade(f)) for f in body["fields"])
    names = [f.name for f in fields]
    if not fields or len(set(names)) != len(names):
        raise ValueError(f"fields {names} must be at least one, with distinct names")
    shards = tuple(shard_from_dict(s, fields) for s in body["shards"])
    if sum(s.num_samples for s in shards) > _MAX_TOTAL_SAMPLES or (
        sum(s.num_bytes for s in shards) > _MAX_TOTAL_BYTES
    ):
        raise ValueError("the shards' totals are beyond any dataset (2**48 samples, 2**60 bytes)")
    skipped = tuple(Skipped(str(s["item"]), str(s["reason"])) for s in body.get("skipped", ()))
    return Manifest(
        fields=fields,
        shards=shards,
        source=dict(body.get("source", {})),
        skipped=skipped,
        created_by=str(body.get("created_by", "")),
        version=int(body["version"]),
        generation=str(body.get("generation", "")),
    )


def _field_v2(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A version-2 field entry in version 3's terms: encoded images were ``bytes`` with
    ``codec: image`` and an ``image_mode``; the other kinds kept their names."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"a field entry is a {type(raw).__name__}, not an object")
    if raw.get("codec") is None:
        return dict(raw)
    if raw.get("codec") != "image" or raw.get("kind") != "bytes":
        raise ValueError(f"field {raw.get('name')!r} has unknown codec {raw.get('codec')!r}")
    return {"name": raw["name"], "kind": "image", "mode": raw.get("image_mode") or "RGB"}


def _span(raw: Mapping[str, Any]) -> BufferSpan:
    return BufferSpan(offset=_size(raw["offset"]), length=_size(raw["length"]))


def _size(raw: Any) -> int:
    """A byte or sample count: a non-negative int small enough for any index type."""
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= _MAX_BYTES:
        raise ValueError(f"{raw!r} is not a count (an integer in [0, 2**48])")
    return raw


def shard_from_dict(raw: Mapping[str, Any], fields: Sequence[FieldSpec]) -> ShardSpec:
    buffers = {f.name: {b: _span(raw["buffers"][f.name][b]) for b in f.buffers} for f in fields}
    shard = ShardSpec(
        name=str(raw["name"]),
        num_samples=_size(raw["num_samples"]),
        num_bytes=_size(raw["num_bytes"]),
        xxh3_64=str(raw["xxh3_64"]),
        buffers=buffers,
        block_bytes=_size(raw["block_bytes"]),
        block_xxh3=tuple(str(b) for b in raw["block_xxh3"]),
    )
    if "/" in shard.name or "\\" in shard.name or shard.name.startswith("."):
        raise ValueError(f"shard name {shard.name!r} must be a plain file name")
    if shard.num_samples < 1:
        raise ValueError(f"shard {shard.name!r} holds no samples (pack never writes empty shards)")
    if shard.block_bytes < 1 or len(shard.block_xxh3) != -(-shard.num_bytes // shard.block_bytes):
        raise ValueError(f"shard {shard.name!r} has block checksums that do not cover its bytes")
    # every sample takes bytes in every field (a row, or an 8-byte offset): a count the file
    # cannot hold is refused here, before anything is sized by it
    per_sample = sum(f.row_bytes if f.fixed else 8 for f in fields)
    if per_sample < 1 or shard.num_samples * per_sample > shard.num_bytes:
        raise ValueError(
            f"shard {shard.name!r} claims {shard.num_samples} samples, more than its "
            f"{shard.num_bytes} bytes can hold"
        )
    return shard
