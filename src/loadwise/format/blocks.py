"""Per-block verification: no byte of a sample is served before its block's checksum passed.

Each process keeps a bitmap of the blocks it has checked. A batch needs the blocks under
its samples' bytes; unchecked ones are read with ``pread`` and hashed (about a MiB each),
so the first batch of a huge dataset costs a few blocks, not whole shards. Once every
block is checked the cost is one integer comparison per batch. A shard this process
checked block by block as it arrived (a remote store's download, ``arrived``) counts as
checked: hashing it again moments later, from the pages just written, finds nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xxhash

from loadwise.errors import IntegrityError
from loadwise.format.fields import FieldSpec
from loadwise.format.spec import Manifest, ShardSpec
from loadwise.stores import ShardFile, ShardStore

_MAX_OPEN = 16


class BlockVerifier:
    """Checks the blocks under the bytes of the samples a batch is about to read."""

    def __init__(
        self,
        store: ShardStore,
        manifest: Manifest,
        fields: Sequence[FieldSpec],
        arrived: Callable[[str], bool] | None = None,
        refetch: Callable[[str], None] | None = None,
    ) -> None:
        self._store, self._manifest, self._fields = store, manifest, tuple(fields)
        self._arrived = arrived  # shard name -> its copy was checked here on arrival
        self._refetch = refetch  # shard name: drop its damaged local copy (remote stores)
        self._starts = manifest.shard_starts()
        self._checked = [_unneeded(s, self._fields) for s in manifest.shards]
        self._left_in = [int((~c).sum()) for c in self._checked]
        self._left = sum(self._left_in)
        self._files: dict[int, ShardFile] = {}

    def require(self, indices: np.ndarray) -> None:
        """Raise ``IntegrityError`` naming the sample if any byte it needs is damaged."""
        if self._left == 0 or indices.size == 0:
            return
        owners = np.searchsorted(self._starts, indices, side="right") - 1
        for number in np.unique(owners).tolist():
            if self._left_in[number]:
                self._require_shard(number, indices[owners == number] - self._starts[number])

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()

    def _require_shard(self, number: int, local: np.ndarray) -> None:
        shard = self._manifest.shards[number]
        if self._arrived is not None and self._arrived(shard.name):
            self._done(number)
            return
        for spec in self._fields:
            spans = shard.buffers[spec.name]
            if spec.fixed:
                first = spans["values"].offset + local * spec.row_bytes
                self._require_ranges(number, local, first, first + spec.row_bytes)
                continue
            at = spans["offsets"].offset + local * 8
            self._require_ranges(number, local, at, at + 16)  # offsets[i], offsets[i + 1]
            bounds = self._offsets(number, shard, at) * spec.element_dtype.itemsize
            if bounds.size and (
                bounds.min() < 0
                or np.any(bounds[:, 1] < bounds[:, 0])
                or bounds.max() > spans["data"].length
            ):
                raise IntegrityError(
                    f"shard `{shard.name}` in `{self._store.location}`: the offsets of field "
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
        for again in (False, True):
            data = self._file(number, shard).read(length, offset)
            if self._arrived is not None and self._arrived(shard.name):  # fetched by that read
                self._done(number)
                return
            if xxhash.xxh3_64_hexdigest(data) == shard.block_xxh3[block]:
                break
            # a remote store's local copy went bad after it was checked on arrival (a disk
            # error, a crash): dropped, and fetched again by the next read
            if again or self._refetch is None:
                raise self._damaged(number, block, sample, again)
            self._refetch(shard.name)
            self._files.pop(number).close()
        self._checked[number][block] = True
        self._left -= 1
        self._left_in[number] -= 1
        if self._left_in[number] == 0 and number in self._files:
            self._files.pop(number).close()

    def _damaged(self, number: int, block: int, sample: int, again: bool) -> IntegrityError:
        shard = self._manifest.shards[number]
        offset, length = shard.block_span(block)
        where = (
            f"sample {int(self._starts[number]) + sample} lies in damaged bytes of shard "
            f"`{shard.name}` in `{self._store.location}` (block {block}, bytes {offset:,}-"
            f"{offset + length - 1:,} fail their checksum)"
        )
        if again:
            return IntegrityError(
                f"{where}, in the local copy fetched again after the first was found damaged: "
                f"the disk under the shard cache may be failing; check it, or give "
                f"`cache_dir` another folder."
            )
        return IntegrityError(
            f"{where}: re-run `loadwise pack`, or `loadwise verify` for the extent."
        )

    def _done(self, number: int) -> None:
        """Every block of shard ``number`` counts as checked."""
        self._checked[number][:] = True
        self._left -= self._left_in[number]
        self._left_in[number] = 0
        if number in self._files:
            self._files.pop(number).close()

    def _offsets(self, number: int, shard: ShardSpec, at: np.ndarray) -> np.ndarray:
        """``(start, end)`` of each sample's value in elements, read from the (now verified)
        offsets."""
        file = self._file(number, shard)
        pairs = [np.frombuffer(file.read(16, int(a)), dtype=np.int64) for a in at.tolist()]
        return np.stack(pairs) if pairs else np.empty((0, 2), np.int64)

    def _file(self, number: int, shard: ShardSpec) -> ShardFile:
        if number not in self._files:
            if len(self._files) >= _MAX_OPEN:
                self._files.pop(next(iter(self._files))).close()
            self._files[number] = self._store.open(shard.name, shard.num_bytes)
        return self._files[number]


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
