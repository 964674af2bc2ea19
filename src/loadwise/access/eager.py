"""Eager mode: every selected field in one contiguous array in shared memory.

Loaded once at open. Forked DataLoader workers inherit the mapping and spawned ones receive
it by file descriptor, so main + workers hold about one copy: no copy-on-write growth,
because reads never touch per-sample Python objects.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from loadwise.access.base import PackedDataset, Storage
from loadwise.access.budget import available_memory, stored_bytes
from loadwise.errors import ModeError
from loadwise.format.reader import MappedShard
from loadwise.format.spec import FieldSpec, Manifest

log = logging.getLogger(__name__)


class SharedStorage:
    """Numpy views over shared-memory tensors: ``values`` per array field, else offsets + data."""

    def __init__(self, tensors: dict[str, torch.Tensor], fields: Sequence[FieldSpec]) -> None:
        self._views: dict[str, np.ndarray] = {}
        for spec in fields:
            if spec.kind == "array":
                raw = tensors[f"{spec.name}.values"].numpy()
                self._views[spec.name] = raw.view(np.dtype(spec.dtype)).reshape(-1, *spec.shape)
            else:
                self._views[f"{spec.name}.offsets"] = (
                    tensors[f"{spec.name}.offsets"].numpy().view(np.int64)
                )
                self._views[f"{spec.name}.data"] = tensors[f"{spec.name}.data"].numpy()

    def gather_array(self, spec: FieldSpec, indices: np.ndarray) -> np.ndarray:
        return np.take(self._views[spec.name], indices, axis=0)

    def gather_bytes(self, spec: FieldSpec, indices: np.ndarray) -> list[bytes]:
        offsets = self._views[f"{spec.name}.offsets"]
        data = self._views[f"{spec.name}.data"]
        starts, ends = offsets[indices].tolist(), offsets[indices + 1].tolist()
        return [data[a:b].tobytes() for a, b in zip(starts, ends, strict=True)]

    def close(self) -> None:
        self._views.clear()


class EagerDataset(PackedDataset):
    """The whole dataset in RAM, one shared copy: the fastest reads, paid for at open."""

    mode = "eager"

    def __init__(
        self, root: str | Path, *, fields: Sequence[str] | None = None, verify: str = "first_use"
    ) -> None:
        super().__init__(root, fields=fields, verify=verify)
        needed, available = stored_bytes(self.manifest, self.fields), available_memory()
        if needed > available:
            raise ModeError(
                f"eager mode needs {needed / 2**20:,.0f} MiB for `{self.root}`, but only "
                f"{available / 2**20:,.0f} MiB are available: use mode='lazy' or 'streaming'."
            )
        started = time.perf_counter()
        self._tensors = _load_shared(self.root, self.manifest, self.fields, verify == "first_use")
        log.info(
            "eager: %s samples, %.0f MiB in shared memory, loaded in %.2f s",
            len(self),
            needed / 2**20,
            time.perf_counter() - started,
        )

    def _open_storage(self) -> Storage:
        return SharedStorage(self._tensors, self.fields)

    def close(self) -> None:
        super().close()
        self._tensors = {}


def _load_shared(
    root: Path, manifest: Manifest, fields: Sequence[FieldSpec], verify: bool
) -> dict[str, torch.Tensor]:
    """Copy each field of every shard into one shared-memory tensor per buffer."""
    sizes = _buffer_sizes(manifest, fields)
    tensors = {key: _shared_uint8(size) for key, size in sizes.items()}
    cursor = dict.fromkeys(sizes, 0)
    for shard_spec in manifest.shards:
        shard = MappedShard(root, shard_spec, manifest.fields, verify)
        try:
            for spec in fields:
                for key, chunk in _shard_buffers(shard, spec, cursor):
                    view = tensors[key].numpy()
                    view[cursor[key] : cursor[key] + chunk.nbytes] = chunk.view(np.uint8).reshape(
                        -1
                    )
                    cursor[key] += chunk.nbytes
                    del chunk, view  # release the views so the shard can be unmapped
        finally:
            shard.close()
    return tensors


def _buffer_sizes(manifest: Manifest, fields: Sequence[FieldSpec]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for spec in fields:
        spans = [s.buffers[spec.name] for s in manifest.shards]
        if spec.kind == "array":
            sizes[f"{spec.name}.values"] = sum(s["values"].length for s in spans)
        else:
            sizes[f"{spec.name}.offsets"] = 8 * (manifest.num_samples + 1)
            sizes[f"{spec.name}.data"] = sum(s["data"].length for s in spans)
    return sizes


def _shard_buffers(
    shard: MappedShard, spec: FieldSpec, cursor: dict[str, int]
) -> list[tuple[str, np.ndarray]]:
    """This shard's piece of each buffer; offsets are rebased onto the data before them."""
    if spec.kind == "array":
        return [(f"{spec.name}.values", shard.array(spec.name))]
    offsets = shard.offsets(spec.name)
    base = cursor[f"{spec.name}.data"]
    first = cursor[f"{spec.name}.offsets"] == 0
    rebased = (offsets if first else offsets[1:]) + base
    return [(f"{spec.name}.offsets", rebased), (f"{spec.name}.data", shard.data(spec.name))]


def _shared_uint8(size: int) -> torch.Tensor:
    """A byte tensor in shared memory (``share_memory_`` moves it into a new segment)."""
    return torch.empty(size, dtype=torch.uint8).share_memory_()
