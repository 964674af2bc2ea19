"""Open a packed dataset: read and check its manifest, map shards, verify their checksums.

Reading never trusts the files: sizes are checked at open, buffer spans against the file and
the field specs, offsets against their data, and content against the checksum before use.
Every byte comes through the dataset's store (``loadwise.stores``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xxhash

from loadwise.errors import ConfigError, IntegrityError
from loadwise.format.fields import FieldSpec, FixedField
from loadwise.format.spec import MANIFEST_NAME, Manifest, ShardSpec, manifest_from_json
from loadwise.stores import ShardStore, open_store

VERIFY_POLICIES = ("first_use", "open", "never")
_HASH_CHUNK = 16 * 2**20


def read_manifest(location: str | Path | ShardStore) -> Manifest:
    """Read the manifest; check every shard's size and that its buffer spans fit the file and
    the fields, so no later read (or checksum block lookup) can go out of range."""
    store = open_store(location)
    manifest = load_manifest(store)
    for shard in manifest.shards:
        store.check(shard.name, shard.num_bytes)
        check_layout(shard, manifest.fields)
    return manifest


def load_manifest(location: str | Path | ShardStore) -> Manifest:
    """Read and check the manifest alone, without looking at the shards."""
    store = open_store(location)
    text = store.read_manifest().decode("utf-8", "replace")
    return manifest_from_json(text, f"{store.location}/{MANIFEST_NAME}")


def check_layout(shard: ShardSpec, fields: Sequence[FieldSpec]) -> None:
    """Every buffer span must lie in the file and fit its field: no read can go out of range."""
    for spec in fields:
        spans = shard.buffers[spec.name]
        for name, span in spans.items():
            if span.offset + span.length > shard.num_bytes:
                raise IntegrityError(
                    f"shard `{shard.name}`: field `{spec.name}` {name} ends at byte "
                    f"{span.offset + span.length:,}, past the file's {shard.num_bytes:,}."
                )
        if spec.fixed:
            found, expected = spans["values"].length, shard.num_samples * spec.row_bytes
        else:
            found, expected = spans["offsets"].length, 8 * (shard.num_samples + 1)
        if found != expected:
            raise IntegrityError(
                f"shard `{shard.name}`: field `{spec.name}` holds {found:,} bytes for "
                f"{shard.num_samples} samples, expected {expected:,}."
            )


def verify_file(store: ShardStore, shard: ShardSpec) -> None:
    """Hash the whole file and compare with the manifest's checksum."""
    digest = xxhash.xxh3_64()
    with store.open(shard.name, shard.num_bytes) as file:
        for offset in range(0, shard.num_bytes, _HASH_CHUNK):
            digest.update(file.read(min(_HASH_CHUNK, shard.num_bytes - offset), offset))
    compare_checksum(digest.hexdigest(), shard, store.location)


class MappedShard:
    """One shard file mapped read-only; field buffers are numpy views over the mapping."""

    def __init__(
        self, store: ShardStore, shard: ShardSpec, fields: Sequence[FieldSpec], verify: bool
    ) -> None:
        check_layout(shard, fields)
        self.spec = shard
        self._fields = {f.name: f for f in fields}
        with store.open(shard.name, shard.num_bytes) as file:
            self._map = file.map()
        if verify and self._map is not None:
            compare_checksum(xxhash.xxh3_64_hexdigest(self._map), shard, store.location)
        for spec in fields:
            if not spec.fixed:
                check_offsets(self.offsets(spec.name), shard, spec, self._span_len(spec.name))

    def array(self, name: str) -> np.ndarray:
        """``(num_samples, *shape)`` view of a fixed field."""
        spec = self._fields[name]
        assert isinstance(spec, FixedField), f"`{name}` is not a fixed field"
        span = self.spec.buffers[name]["values"]
        flat = self._view(spec.numpy_dtype, span.offset, span.length)
        return flat.reshape(self.spec.num_samples, *spec.shape)

    def offsets(self, name: str) -> np.ndarray:
        span = self.spec.buffers[name]["offsets"]
        return self._view(np.dtype(np.int64), span.offset, span.length)

    def data(self, name: str) -> np.ndarray:
        """A variable field's elements (its ``element_dtype``)."""
        span = self.spec.buffers[name]["data"]
        return self._view(self._fields[name].element_dtype, span.offset, span.length)

    @property
    def address(self) -> int | None:
        """Where the mapping starts in memory (None: an empty file, nothing mapped)."""
        if self._map is None:
            return None
        return int(np.frombuffer(self._map, np.uint8, count=1).ctypes.data)

    def close(self) -> None:
        if self._map is not None:
            with contextlib.suppress(BufferError):  # a caller still holds a view
                self._map.close()
            self._map = None

    def _span_len(self, name: str) -> int:
        return self.spec.buffers[name]["data"].length

    def _view(self, dtype: np.dtype, offset: int, length: int) -> np.ndarray:
        if self._map is None or length == 0:
            return np.empty(0, dtype)
        return np.frombuffer(self._map, dtype=dtype, count=length // dtype.itemsize, offset=offset)


def check_offsets(offsets: np.ndarray, shard: ShardSpec, spec: FieldSpec, data_len: int) -> None:
    """Offsets must start at 0, never decrease and end at the data's last element."""
    if len(offsets) == 0:
        return
    itemsize = spec.element_dtype.itemsize
    if offsets[0] != 0 or int(offsets[-1]) * itemsize != data_len or np.any(np.diff(offsets) < 0):
        raise IntegrityError(
            f"shard `{shard.name}`: the offsets of field `{spec.name}` are damaged; "
            f"re-run `loadwise pack`, or `loadwise verify` to see what else is."
        )


def compare_checksum(found: str, shard: ShardSpec, location: str) -> None:
    if found != shard.xxh3_64:
        raise IntegrityError(
            f"shard `{shard.name}` in `{location}` fails its checksum (xxh3_64 {found}, "
            f"manifest {shard.xxh3_64}): its content is damaged; re-run `loadwise pack`."
        )


def check_policy(verify: str) -> str:
    if verify not in VERIFY_POLICIES:
        raise ConfigError(
            f"`verify` must be one of {', '.join(VERIFY_POLICIES)}. Found: {verify!r}."
        )
    return verify


__all__ = [
    "VERIFY_POLICIES",
    "MappedShard",
    "check_layout",
    "check_offsets",
    "check_policy",
    "compare_checksum",
    "load_manifest",
    "read_manifest",
    "verify_file",
]
