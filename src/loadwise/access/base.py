"""The one interface every access mode has, and the batch assembly they share.

A mode is a ``Storage`` (where the stored bytes live: RAM, a memory map, reads on demand)
behind the same dataset class. A storage answers two questions, for fixed fields (``rows``)
and variable ones (``segments``); each field kind turns those into its part of the batch
(``format/fields``). ``get_batch`` gathers each field once for a whole batch;
``__getitems__`` serves plain ``DataLoader``\\ s with the same single gather.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from loadwise import stages
from loadwise.access import sigbus
from loadwise.errors import ConfigError, LoadwiseError, SampleIndexError
from loadwise.format.blocks import BlockVerifier
from loadwise.format.crop import check_crop
from loadwise.format.fields import RAGGED_OUTPUTS, FieldSpec, ReadOptions, Segment
from loadwise.format.reader import check_policy, read_manifest, verify_file
from loadwise.format.spec import Manifest
from loadwise.stores import ShardStore, is_url, open_store

Batch = dict[str, Any]


class Storage(Protocol):
    """Where a mode keeps the stored bytes; indices are global and already checked."""

    def rows(self, spec: FieldSpec, indices: np.ndarray) -> np.ndarray: ...

    def segments(self, spec: FieldSpec, indices: np.ndarray) -> Iterator[Segment]: ...

    def close(self) -> None: ...


class PackedBase:
    """What every mode shares: the manifest, field selection, batch assembly, pickling."""

    mode: ClassVar[str]
    #: True where the whole content is hashed while loading (eager), so reads need no checks.
    verifies_on_load: ClassVar[bool] = False

    def __init__(
        self,
        root: str | Path | ShardStore,
        *,
        fields: Sequence[str] | None = None,
        verify: str = "first_use",
        ragged: str = "padded",
        crop: int | tuple[int, int] | None = None,
    ) -> None:
        self.store: ShardStore = open_store(root)
        location = self.store.location
        self.root: Path | str = location if is_url(location) else Path(location)
        #: A remote store keeps a batch's shards while it reads them and unpins them after.
        self._remote: Any = self.store if hasattr(self.store, "begin") else None
        self.manifest: Manifest = read_manifest(self.store)
        self.verify = check_policy(verify)
        if ragged not in RAGGED_OUTPUTS:
            raise ConfigError(
                f"`ragged` must be one of {', '.join(RAGGED_OUTPUTS)}. Found: {ragged!r}."
            )
        self.read_options = ReadOptions(ragged=ragged, crop=check_crop(crop))
        names = [f.name for f in self.manifest.fields] if fields is None else list(fields)
        self.fields: tuple[FieldSpec, ...] = tuple(self.manifest.field(n) for n in names)
        if crop is not None and not any(f.kind == "image" for f in self.fields):
            raise ConfigError(
                f"`crop` cuts encoded images as they decode; `{location}` has no image field "
                f"among {names}. Crop decoded arrays in a `batch_transform` instead."
            )
        self._storage: Storage | None = None
        self._blocks: BlockVerifier | None = None
        self._closed = False
        if self.verify == "open":
            for shard in self.manifest.shards:
                verify_file(self.store, shard)

    def __len__(self) -> int:
        return self.manifest.num_samples

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> Batch:
        """A whole batch as ``{field: tensor or list}`` plus ``index``, one gather per field."""
        idx = self._checked(indices)
        storage = self._storage or self.storage()
        if self._remote is not None:
            self._remote.begin(idx)
        try:
            with stages.span("gather"):  # per-stage timings, only while monitoring
                if self._blocks is not None:
                    self._blocks.require(idx)
                batch: Batch = {}
                for spec in self.fields:
                    batch.update(spec.read_batch(storage, idx, self.read_options))
        finally:  # a batch that raised lets its remote copies go too
            if self._remote is not None:
                self._remote.idle()
        sigbus.check()  # a mapped shard truncated under this batch: refused, not served
        batch["index"] = torch.from_numpy(idx)
        return batch

    def read_ahead(self, batches: list[np.ndarray]) -> Iterator[np.ndarray]:
        """``batches`` as the sampler hands them out; a remote store fetches the shards of
        the next ones meanwhile (``stores/prefetch.py``)."""
        ahead = getattr(self.store, "read_ahead", None)
        return iter(batches) if ahead is None else ahead(self.manifest, batches)

    def categories(self, name: str) -> tuple[str, ...]:
        """Names of the values of an integer field such as ``label``."""
        return getattr(self.manifest.field(name), "categories", None) or ()

    def storage(self) -> Storage:
        """This process's storage, created on first use (after a fork, in each worker)."""
        if self._storage is None:
            if self.verify == "first_use" and not self.verifies_on_load:
                arrived = getattr(self.store, "checked_on_arrival", None)
                refetch = getattr(self.store, "refetch", None)  # stores with local copies
                self._blocks = BlockVerifier(self.store, self.manifest, self.fields, arrived,
                                             refetch)  # fmt: skip
            self._storage = self._open_storage()
        return self._storage

    def close(self) -> None:
        """Release files and memory; reading afterwards raises."""
        self._closed = True
        if self._blocks is not None:
            self._blocks.close()
            self._blocks = None
        if self._storage is not None:
            self._storage.close()
            self._storage = None
        if self._remote is not None:  # its pins and its read-ahead helper
            self._remote.close()

    def __enter__(self) -> PackedBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_storage"] = state["_blocks"] = None
        return state

    def __repr__(self) -> str:
        names = ", ".join(f.name for f in self.fields)
        return f"{type(self).__name__}({str(self.root)!r}, samples={len(self)}, fields=[{names}])"

    def _open_storage(self) -> Storage:
        raise NotImplementedError

    def _checked(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Indices as a new int64 array (storages may key on it for the batch), negatives
        counted from the end; refused if out of range or closed."""
        if self._closed:
            raise LoadwiseError(f"the dataset at `{self.root}` is closed; open it again to read.")
        if type(indices) is np.ndarray and indices.dtype == np.int64:  # the sampler's batches
            idx = indices.reshape(-1).copy()
        else:
            idx = _as_indices(indices, self.root)
        n = len(self)
        if not idx.size or idx.view(np.uint64).max() < n:  # one pass: negatives look huge
            return idx
        if ((idx < -n) | (idx >= n)).any():
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise SampleIndexError(
                f"sample index {bad} is out of range for {n} samples in `{self.root}`."
            )
        idx[idx < 0] += n
        return idx


class PackedDataset(PackedBase, Dataset):
    """A map-style dataset over a packed folder; the mode decides where bytes live."""

    def __getitem__(self, index: int) -> Batch:
        return _row(self.get_batch([index]), 0)

    def __getitems__(self, indices: Sequence[int]) -> list[Batch]:
        """Samples for a plain ``DataLoader``: gathered in one call, then split into rows."""
        batch = self.get_batch(indices)
        return [_row(batch, i) for i in range(len(indices))]


def _as_indices(indices: Any, root: Path | str) -> np.ndarray:
    """Sample indices as int64, or ``SampleIndexError`` naming what is not one: floats are
    refused (never truncated), and integers beyond int64 are out of range, not wrapped."""
    try:
        given = np.asarray(indices)
    except (ValueError, TypeError):  # ragged nesting
        given = np.asarray(indices, dtype=object)
    if given.size == 0:
        return np.empty(0, np.int64)
    if given.dtype.kind in "iu":
        if given.dtype.kind == "u" and given.size and given.max() > np.iinfo(np.int64).max:
            raise _out_of_range(int(given.max()), root)
        return given.astype(np.int64).reshape(-1)
    if given.dtype == object and all(_is_int(v) for v in given.reshape(-1)):
        for value in given.reshape(-1):  # Python ints of any size: range-checked here
            if not -(2**63) <= int(value) < 2**63:
                raise _out_of_range(int(value), root)
        return given.astype(np.int64).reshape(-1)
    raise SampleIndexError(
        f"sample indices must be integers; got {indices!r} ({given.dtype}) for `{root}`. Index "
        f"with an int or a sequence or array of ints (a slice: `get_batch(range(a, b))`)."
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _out_of_range(value: int, root: Path | str) -> SampleIndexError:
    return SampleIndexError(f"sample index {value} is out of range for the samples in `{root}`.")


def _row(batch: Batch, i: int) -> Batch:
    return {name: value[i] for name, value in batch.items()}
