"""Per-block verification: no byte of a sample is served before its block's checksum passed.

Each process keeps a bitmap of the blocks it has checked. A batch needs the blocks under
its samples' bytes; unchecked ones are read with ``pread`` and hashed (about a MiB each),
so the first batch of a huge dataset costs a few blocks, not whole shards. Once every
block is checked the cost is one integer comparison per batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xxhash

from loadwise.errors import IntegrityError
from loadwise.format.spec import FieldSpec, Manifest, ShardSpec

_MAX_OPEN = 16


class BlockVerifier:
    """Checks the blocks under the bytes of the samples a batch is about to read."""

    def __init__(self, root: Path, manifest: Manifest, fields: Sequence[FieldSpec]) -> None:
        self._root, self._manifest, self._fields = root, manifest, tuple(fields)
        self._starts = manifest.shard_starts()
        self._checked = [_unneeded(s, self._fields) for s in manifest.shards]
        self._left_in = [int((~c).sum()) for c in self._checked]
        self._left = sum(self._left_in)
        self._fds: dict[int, int] = {}

    def require(self, indices: np.ndarray) -> None:
        """Raise ``IntegrityError`` naming the sample if any byte it needs is damaged."""
        if self._left == 0 or indices.size == 0:
            return
        owners = np.searchsorted(self._starts, indices, side="right") - 1
        for number in np.unique(owners).tolist():
            if self._left_in[number]:
                self._require_shard(number, indices[owners == number] - self._starts[number])

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _require_shard(self, number: int, local: np.ndarray) -> None:
        shard = self._manifest.shards[number]
        for spec in self._fields:
            spans = shard.buffers[spec.name]
            if spec.kind == "array":
                first = spans["values"].offset + local * spec.row_bytes
                self._require_ranges(number, local, first, first + spec.row_bytes)
                continue
            at = spans["offsets"].offset + local * 8
            self._require_ranges(number, local, at, at + 16)  # offsets[i], offsets[i + 1]
            bounds = self._offsets(number, shard, at)
            if bounds.size and (
                bounds.min() < 0
                or np.any(bounds[:, 1] < bounds[:, 0])
                or bounds.max() > spans["data"].length
            ):
                raise IntegrityError(
                    f"shard `{shard.name}` in `{self._root}`: the offsets of field "
                    f"`{spec.name}` are damaged; re-run `loadwise pack`."
                )
            data = spans["data"].offset
            self._require_ranges(number, local, data + bounds[:, 0], data + bounds[:, 1])

    def _require_ranges(
        self, number: int, local: np.ndarray, starts: np.ndarray, ends: np.ndarray
    ) -> None:
        """Check every block that byte ranges ``[starts, ends)`` touch."""
        checked, size = self._checked[number], self._manifest.shards[number].block_bytes
        ends = np.maximum(ends, starts + 1)  # an empty value still needs its neighbourhood
        first, last = starts // size, (ends - 1) // size
        if np.all(last - first <= 1) and np.all(checked[first]) and np.all(checked[last]):
            return
        for lo, hi, sample in zip(first.tolist(), last.tolist(), local.tolist(), strict=True):
            for block in range(lo, hi + 1):
                if not checked[block]:
                    self._check_block(number, block, sample)

    def _check_block(self, number: int, block: int, sample: int) -> None:
        shard = self._manifest.shards[number]
        offset, length = shard.block_span(block)
        data = os.pread(self._fd(number, shard), length, offset)
        if len(data) != length or xxhash.xxh3_64_hexdigest(data) != shard.block_xxh3[block]:
            global_index = int(self._starts[number]) + sample
            raise IntegrityError(
                f"sample {global_index} lies in damaged bytes of shard `{shard.name}` in "
                f"`{self._root}` (block {block}, bytes {offset:,}-{offset + length - 1:,} fail "
                f"their checksum): re-run `loadwise pack`, or `loadwise verify` for the extent."
            )
        self._checked[number][block] = True
        self._left -= 1
        self._left_in[number] -= 1
        if self._left_in[number] == 0 and number in self._fds:
            os.close(self._fds.pop(number))

    def _offsets(self, number: int, shard: ShardSpec, at: np.ndarray) -> np.ndarray:
        """``(start, end)`` of each sample's value, read from the (now verified) offsets."""
        fd = self._fd(number, shard)
        pairs = [np.frombuffer(os.pread(fd, 16, int(a)), dtype=np.int64) for a in at.tolist()]
        return np.stack(pairs) if pairs else np.empty((0, 2), np.int64)

    def _fd(self, number: int, shard: ShardSpec) -> int:
        if number not in self._fds:
            if len(self._fds) >= _MAX_OPEN:
                os.close(self._fds.pop(next(iter(self._fds))))
            self._fds[number] = os.open(self._root / shard.name, os.O_RDONLY)
        return self._fds[number]


def _unneeded(shard: ShardSpec, fields: Sequence[FieldSpec]) -> np.ndarray:
    """Blocks no selected field's bytes lie in (Arrow metadata, other fields): never read,
    so marked done, and a dataset counts as fully checked once every needed block is."""
    done = np.ones(len(shard.block_xxh3), dtype=bool)
    for spec in fields:
        for span in shard.buffers[spec.name].values():
            if span.length:
                first = span.offset // shard.block_bytes
                last = (span.offset + span.length - 1) // shard.block_bytes
                done[first : last + 1] = False
    return done
