"""The on-disk format: Arrow IPC shards plus a checksummed JSON manifest (see README.md)."""

from loadwise.format.pack import DEFAULT_SHARD_BYTES, PackReport, pack
from loadwise.format.reader import VERIFY_POLICIES, read_manifest
from loadwise.format.spec import FORMAT_VERSION, FieldSpec, Manifest, ShardSpec, Skipped

__all__ = [
    "DEFAULT_SHARD_BYTES",
    "FORMAT_VERSION",
    "VERIFY_POLICIES",
    "FieldSpec",
    "Manifest",
    "PackReport",
    "ShardSpec",
    "Skipped",
    "pack",
    "read_manifest",
]
