"""``pack``: sources into shards and a manifest, atomically, on a backend (see README.md)."""

from loadwise.packing.options import DEFAULT_SHARD_BYTES, ON_ERROR, PackPlan, ShardLayout
from loadwise.packing.pack import ENGINES, PackReport, pack
from loadwise.packing.partition import PartitionResult, assemble_manifest, write_partition

__all__ = [
    "DEFAULT_SHARD_BYTES",
    "ENGINES",
    "ON_ERROR",
    "PackPlan",
    "PackReport",
    "PartitionResult",
    "ShardLayout",
    "assemble_manifest",
    "pack",
    "write_partition",
]
