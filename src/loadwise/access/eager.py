"""Eager mode: every selected field in one contiguous array in RAM, one copy for all workers.

Loaded once at open into private anonymous memory that asks for transparent huge pages:
forked DataLoader workers share its pages (nothing ever writes them, so copy-on-write never
copies), and random row gathers run as fast as from a plain numpy array (shared memory sits
on 4 KB pages where the kernel's shmem huge pages are off: ~5-8% slower gathers here).
Pickling the dataset (spawned workers) first moves the bytes into shared memory, once, so
spawned workers receive them by file descriptor: still one copy.
"""

from __future__ import annotations

import logging
import mmap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xxhash

from loadwise.access.base import PackedDataset, Storage
from loadwise.access.budget import eager_budget, stored_bytes
from loadwise.errors import IntegrityError, ModeError
from loadwise.format.fields import FieldSpec, FixedField, Segment
from loadwise.format.reader import check_layout, check_offsets
from loadwise.format.spec import Manifest, ShardSpec
from loadwise.gather.rows import take_rows
from loadwise.gather.spans import starts_and_lengths
from loadwise.gather.threads import batch_threads, threads
from loadwise.stores import ShardFile, ShardStore

log = logging.getLogger(__name__)
_SCRATCH = 4 * 2**20
_MOVE_BYTES = 64 * 2**20  # a multiple of any page size


class MemoryStorage:
    """Numpy views over byte tensors: ``values`` per fixed field, else offsets (rebased to
    the whole dataset) + data, so every field of a batch is one gather."""

    def __init__(self, tensors: dict[str, torch.Tensor], fields: Sequence[FieldSpec]) -> None:
        self._views: dict[str, np.ndarray] = {}
        for spec in fields:
            if isinstance(spec, FixedField):
                raw = tensors[f"{spec.name}.values"].numpy()
                self._views[spec.name] = raw.view(spec.numpy_dtype).reshape(-1, *spec.shape)
            else:
                self._views[f"{spec.name}.offsets"] = (
                    tensors[f"{spec.name}.offsets"].numpy().view(np.int64)
                )
                data = tensors[f"{spec.name}.data"].numpy()
                self._views[f"{spec.name}.data"] = data.view(spec.element_dtype)

    def rows(self, spec: FieldSpec, indices: np.ndarray) -> np.ndarray:
        return take_rows(self._views[spec.name], indices)

    def segments(self, spec: FieldSpec, indices: np.ndarray) -> Iterator[Segment]:
        starts, lengths = starts_and_lengths(self._views[f"{spec.name}.offsets"], indices)
        yield Segment(None, starts, lengths, self._views[f"{spec.name}.data"])

    def close(self) -> None:
        self._views.clear()


class EagerDataset(PackedDataset):
    """The whole dataset in RAM, one shared copy: the fastest reads, paid for at open."""

    mode = "eager"
    verifies_on_load = True

    def __init__(
        self,
        root: str | Path | ShardStore,
        *,
        fields: Sequence[str] | None = None,
        verify: str = "first_use",
        ragged: str = "padded",
        crop: int | tuple[int, int] | None = None,
        max_memory_usage: float = 1.0,
    ) -> None:
        super().__init__(root, fields=fields, verify=verify, ragged=ragged, crop=crop)
        needed = self.memory_bytes = stored_bytes(self.manifest, self.fields)
        fits, figures = eager_budget(needed, max_memory_usage)
        if not fits:
            raise ModeError(
                f"eager mode refused for `{self.root}`: {figures}. Use mode='lazy' or "
                f"'streaming', select fewer `fields`, or raise `max_memory_usage`."
            )
        started = time.perf_counter()
        sizes = _buffer_sizes(self.manifest, self.fields)
        self._maps = {key: _private_map(size) for key, size in sizes.items()}
        self._tensors = {key: _bytes_over(self._maps[key], size) for key, size in sizes.items()}
        _load(self.store, self.manifest, self.fields, self._tensors, verify == "first_use")
        log.info(
            "eager: %s samples, %.0f MiB in RAM, loaded in %.2f s",
            len(self),
            needed / 2**20,
            time.perf_counter() - started,
        )

    def _open_storage(self) -> Storage:
        return MemoryStorage(self._tensors, self.fields)

    def share_memory(self) -> None:
        """Move the bytes into shared memory (once), so other processes can map them.

        Pickling does it by itself; forked workers need nothing, they share the pages.
        """
        if all(t.is_shared() for t in self._tensors.values()):
            return
        if self._storage is not None:  # views of the private copy, which is freed below
            self._storage.close()
            self._storage = None
        maps, self._maps = self._maps, {}
        self._tensors = {key: _to_shared(t, maps.get(key)) for key, t in self._tensors.items()}

    def close(self) -> None:
        super().close()
        self._tensors, self._maps = {}, {}

    def __getstate__(self) -> dict[str, Any]:
        self.share_memory()
        return super().__getstate__()


def _load(
    store: ShardStore,
    manifest: Manifest,
    fields: Sequence[FieldSpec],
    tensors: dict[str, torch.Tensor],
    verify: bool,
) -> None:
    """Read each field of every shard straight into its byte tensor (one per buffer).

    Plain reads (no memory map), so the opening peak is the data plus a small scratch
    buffer; with ``verify`` the whole file is hashed on the way, gaps included. The shards
    are shared out among this process's threads: the fresh memory's page faults, most of
    an open's time, scale with cores (287 MiB on 2 cores: 0.62-0.82 -> 0.42-0.50 s).
    """
    cursor = dict.fromkeys(tensors, 0)
    plans: list[tuple[ShardSpec, list[_Target], list[tuple[FieldSpec, np.ndarray]]]] = []
    for shard in manifest.shards:
        check_layout(shard, manifest.fields)
        targets, offsets = _targets(shard, fields, tensors, cursor)
        for key, _, target in targets:
            if key in cursor:
                cursor[key] += len(target)
        plans.append((shard, targets, offsets))

    def read(i: int) -> str:
        shard, targets, _ = plans[i]
        with store.open(shard.name, shard.num_bytes) as file:
            return _read_shard(file, shard, targets, verify)

    pool = threads(batch_threads())
    digests = pool.map(read, len(plans)) if pool is not None else list(map(read, range(len(plans))))
    for (shard, _, offsets), digest in zip(plans, digests, strict=True):
        if verify and digest != shard.xxh3_64:
            raise IntegrityError(
                f"shard `{shard.name}` in `{store.location}` fails its checksum (xxh3_64 "
                f"{digest}, manifest {shard.xxh3_64}): its content is damaged; re-run "
                f"`loadwise pack`."
            )
        for spec, raw in offsets:
            check_offsets(raw, shard, spec, shard.buffers[spec.name]["data"].length)
            _place_offsets(tensors[f"{spec.name}.offsets"].numpy(), raw, spec, cursor)


_Target = tuple[str, int, np.ndarray]  # buffer key, offset in the file, destination bytes


def _targets(
    shard: ShardSpec,
    fields: Sequence[FieldSpec],
    tensors: dict[str, torch.Tensor],
    cursor: dict[str, int],
) -> tuple[list[_Target], list[tuple[FieldSpec, np.ndarray]]]:
    """Where each selected buffer of ``shard`` goes: its slot in the shared tensors, or for
    offsets a small array, rebased later onto the data already loaded."""
    targets: list[_Target] = []
    offsets: list[tuple[FieldSpec, np.ndarray]] = []
    for spec in fields:
        spans = shard.buffers[spec.name]
        buffer = "values" if spec.fixed else "data"
        key, span = f"{spec.name}.{buffer}", spans[buffer]
        slot = tensors[key].numpy()[cursor[key] : cursor[key] + span.length]
        targets.append((key, span.offset, slot))
        if not spec.fixed:
            raw = np.empty(spans["offsets"].length // 8, dtype=np.int64)
            targets.append((f"{spec.name}#offsets", spans["offsets"].offset, raw.view(np.uint8)))
            offsets.append((spec, raw))
    return sorted(targets, key=lambda t: t[1]), offsets


def _read_shard(file: ShardFile, shard: ShardSpec, targets: list[_Target], verify: bool) -> str:
    """Read the targets in file order; hash every byte (gaps too) when verifying."""
    digest = xxhash.xxh3_64()
    position = 0
    for _, offset, target in [*targets, ("", shard.num_bytes, np.empty(0, np.uint8))]:
        while verify and position < offset:  # bytes no target wants: Arrow metadata, ...
            gap = file.read(min(offset - position, _SCRATCH), position)
            digest.update(gap)
            position += len(gap)
        view = target.data.cast("B")
        file.read_into(view, offset)
        if verify:
            digest.update(view)
        position = max(position, offset + len(view))
    return digest.hexdigest()


def _place_offsets(
    dest: np.ndarray, raw: np.ndarray, spec: FieldSpec, cursor: dict[str, int]
) -> None:
    """Append one shard's offsets, shifted past the data of the shards before it."""
    key = f"{spec.name}.offsets"
    rows = dest.view(np.int64)
    first = cursor[key] // 8
    base = int(rows[first - 1]) if first else 0
    piece = raw if first == 0 else raw[1:]
    rows[first : first + len(piece)] = piece + base
    cursor[key] += piece.nbytes


def _buffer_sizes(manifest: Manifest, fields: Sequence[FieldSpec]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for spec in fields:
        spans = [s.buffers[spec.name] for s in manifest.shards]
        if spec.fixed:
            sizes[f"{spec.name}.values"] = sum(s["values"].length for s in spans)
        else:
            sizes[f"{spec.name}.offsets"] = 8 * (manifest.num_samples + 1)
            sizes[f"{spec.name}.data"] = sum(s["data"].length for s in spans)
    return sizes


def _private_map(size: int) -> mmap.mmap | None:
    """A private anonymous mapping that asks for huge pages where the kernel offers them
    (fewer TLB misses in random gathers); fork shares its pages. None where not POSIX."""
    if size == 0 or not hasattr(mmap, "MAP_PRIVATE"):
        return None
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        memory.madvise(mmap.MADV_HUGEPAGE)
    return memory


def _bytes_over(memory: mmap.mmap | None, size: int) -> torch.Tensor:
    """A byte tensor over ``memory``, or a plain allocation without one."""
    if memory is None:
        return torch.empty(size, dtype=torch.uint8)
    return torch.from_numpy(np.frombuffer(memory, dtype=np.uint8))


def _to_shared(tensor: torch.Tensor, memory: mmap.mmap | None) -> torch.Tensor:
    """A copy of ``tensor`` in shared memory, moved piece by piece: each piece of the private
    ``memory`` is given back once copied, so the peak is the data plus one piece, not twice."""
    shared = torch.empty(len(tensor), dtype=torch.uint8).share_memory_()
    give_back = memory if hasattr(mmap, "MADV_DONTNEED") else None
    for start in range(0, len(tensor), _MOVE_BYTES):
        stop = min(start + _MOVE_BYTES, len(tensor))
        shared[start:stop].copy_(tensor[start:stop])
        if give_back is not None:
            give_back.madvise(mmap.MADV_DONTNEED, start, stop - start)
    return shared
