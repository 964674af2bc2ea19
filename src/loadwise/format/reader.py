"""Open a packed dataset: read and check its manifest, map shards, verify their checksums.

Reading never trusts the files: sizes are checked at open, buffer spans against the file and
the field specs, offsets against their data, and content against the checksum before use.
"""

from __future__ import annotations

import contextlib
import mmap
from pathlib import Path

import numpy as np
import xxhash

from loadwise.errors import ConfigError, FormatError, IntegrityError
from loadwise.format.spec import (
    MANIFEST_NAME,
    FieldSpec,
    Manifest,
    ShardSpec,
    manifest_from_json,
)

VERIFY_POLICIES = ("first_use", "open", "never")
_HASH_CHUNK = 16 * 2**20


def read_manifest(root: str | Path) -> Manifest:
    """Read ``root/manifest.json``; check every shard's size and that its buffer spans fit
    the file and the fields, so no later read (or checksum block lookup) can go out of range."""
    manifest = load_manifest(root)
    for shard in manifest.shards:
        check_size(Path(root).expanduser() / shard.name, shard)
        check_layout(shard, manifest.fields)
    return manifest


def load_manifest(root: str | Path) -> Manifest:
    """Read and check ``root/manifest.json`` alone, without looking at the shards."""
    root = Path(root).expanduser()
    path = root / MANIFEST_NAME
    if not root.is_dir():
        raise FormatError(f"`{root}` is not a folder: pass the folder `loadwise pack` wrote.")
    if not path.is_file():
        raise FormatError(
            f"`{root}` has no {MANIFEST_NAME}: it is not a loadwise dataset, or its `pack` did "
            f"not finish. Run `loadwise pack SOURCE {root}`."
        )
    return manifest_from_json(path.read_bytes().decode("utf-8", "replace"), path)


def check_size(path: Path, shard: ShardSpec) -> None:
    """Raise ``IntegrityError`` if the shard file is missing or not the size the manifest says."""
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        raise IntegrityError(
            f"shard `{shard.name}` is missing from `{path.parent}`: re-run `loadwise pack`."
        ) from None
    if actual != shard.num_bytes:
        what = "truncated" if actual < shard.num_bytes else "longer than written"
        raise IntegrityError(
            f"shard `{shard.name}` is {actual:,} bytes, the manifest says {shard.num_bytes:,}: "
            f"the file is {what}; re-run `loadwise pack`, or `loadwise verify {path.parent}`."
        )


def check_layout(shard: ShardSpec, fields: tuple[FieldSpec, ...]) -> None:
    """Every buffer span must lie in the file and fit its field: no read can go out of range."""
    for spec in fields:
        spans = shard.buffers[spec.name]
        for name, span in spans.items():
            if span.offset + span.length > shard.num_bytes:
                raise IntegrityError(
                    f"shard `{shard.name}`: field `{spec.name}` {name} ends at byte "
                    f"{span.offset + span.length:,}, past the file's {shard.num_bytes:,}."
                )
        expected = (
            shard.num_samples * spec.row_bytes
            if spec.kind == "array"
            else 8 * (shard.num_samples + 1)
        )
        found = spans["values" if spec.kind == "array" else "offsets"].length
        if found != expected:
            raise IntegrityError(
                f"shard `{shard.name}`: field `{spec.name}` holds {found:,} bytes for "
                f"{shard.num_samples} samples, expected {expected:,}."
            )


def verify_file(path: Path, shard: ShardSpec) -> None:
    """Hash the whole file and compare with the manifest's checksum."""
    check_size(path, shard)
    digest = xxhash.xxh3_64()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    _compare(digest.hexdigest(), shard, path)


class MappedShard:
    """One shard file mapped read-only; field buffers are numpy views over the mapping."""

    def __init__(self, root: Path, shard: ShardSpec, fields: tuple[FieldSpec, ...], verify: bool):
        path = root / shard.name
        check_size(path, shard)
        check_layout(shard, fields)
        self.spec = shard
        self._fields = {f.name: f for f in fields}
        with open(path, "rb") as handle:
            self._map = (
                mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if shard.num_bytes else None
            )
        if verify and self._map is not None:
            _compare(xxhash.xxh3_64_hexdigest(self._map), shard, path)
        for spec in fields:
            if spec.kind != "array":
                check_offsets(
                    self.offsets(spec.name), self.spec, spec.name, self._span_len(spec.name)
                )

    def array(self, name: str) -> np.ndarray:
        """``(num_samples, *shape)`` view of an array field."""
        spec = self._fields[name]
        span = self.spec.buffers[name]["values"]
        flat = self._view(np.dtype(spec.dtype), span.offset, span.length)
        return flat.reshape(self.spec.num_samples, *spec.shape)

    def offsets(self, name: str) -> np.ndarray:
        span = self.spec.buffers[name]["offsets"]
        return self._view(np.dtype(np.int64), span.offset, span.length)

    def data(self, name: str) -> np.ndarray:
        span = self.spec.buffers[name]["data"]
        return self._view(np.dtype(np.uint8), span.offset, span.length)

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


def check_offsets(offsets: np.ndarray, shard: ShardSpec, name: str, data_len: int) -> None:
    """Offsets must start at 0, never decrease and end at the data length."""
    if len(offsets) == 0:
        return
    if offsets[0] != 0 or offsets[-1] != data_len or np.any(np.diff(offsets) < 0):
        raise IntegrityError(
            f"shard `{shard.name}`: the offsets of field `{name}` are damaged; "
            f"re-run `loadwise pack`, or `loadwise verify` to see what else is."
        )


def _compare(found: str, shard: ShardSpec, path: Path) -> None:
    if found != shard.xxh3_64:
        raise IntegrityError(
            f"shard `{shard.name}` in `{path.parent}` fails its checksum (xxh3_64 {found}, "
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
    "check_size",
    "load_manifest",
    "read_manifest",
    "verify_file",
]
