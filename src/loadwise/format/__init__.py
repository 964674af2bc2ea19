"""The on-disk format: Arrow IPC shards plus a checksummed JSON manifest (see README.md)."""

from loadwise.format.fields import (
    KINDS,
    ArrayField,
    BytesField,
    FieldSpec,
    ImageField,
    RaggedField,
    ReadOptions,
    StringField,
)
from loadwise.format.reader import VERIFY_POLICIES, read_manifest
from loadwise.format.spec import FORMAT_VERSION, Manifest, ShardSpec, Skipped

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "VERIFY_POLICIES",
    "ArrayField",
    "BytesField",
    "FieldSpec",
    "ImageField",
    "Manifest",
    "RaggedField",
    "ReadOptions",
    "ShardSpec",
    "Skipped",
    "StringField",
    "read_manifest",
]
