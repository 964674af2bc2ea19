"""Every shard file mapped back to back in one reserved address range.

A batch of a shuffled epoch spans many shards; gathering shard by shard costs a pass and a
second copy per shard. With all files in one range, a row of any shard sits at a byte
offset in a single array, so a field's whole batch is one numpy gather (measured: lazy
mode at the speed of a gather over one ``numpy.memmap``, whatever the shard count).

POSIX only (``MAP_FIXED`` over a reserved ``PROT_NONE`` range); shards are mapped when a
batch first needs them, after the same size and layout checks as ``MappedShard``.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys

import numpy as np
from numpy.lib.stride_tricks import as_strided

from loadwise.access import sigbus
from loadwise.access.libc import libc
from loadwise.errors import LoadwiseError
from loadwise.format.fields import FixedField
from loadwise.format.reader import check_layout
from loadwise.format.spec import Manifest
from loadwise.gather.rows import take_rows
from loadwise.stores import ShardStore

#: Whether this platform can place file mappings at chosen addresses.
SUPPORTED = sys.platform.startswith("linux") or sys.platform == "darwin"

_PROT_NONE = 0
_MAP_FIXED = 0x10  # the same value on Linux and macOS


class ShardRegion:
    """Shard files of one dataset at known offsets of one address range; read-only."""

    def __init__(
        self, store: ShardStore, manifest: Manifest, fields: tuple[FixedField, ...]
    ) -> None:
        self._store, self._manifest, self._fields = store, manifest, fields
        page = mmap.PAGESIZE
        sizes = np.array([-(-s.num_bytes // page) * page for s in manifest.shards], np.int64)
        self._place = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._total = max(int(self._place[-1]), page)
        self._base = _map(None, self._total, _PROT_NONE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._mapped = np.zeros(len(manifest.shards), dtype=bool)
        self._all_mapped = not manifest.shards
        buffer = (ctypes.c_uint8 * self._total).from_address(self._base)
        self._flat: np.ndarray | None = np.frombuffer(memoryview(buffer), dtype=np.uint8)
        self._starts = manifest.shard_starts()
        self._layouts = {f.name: _Layout(f, manifest, self._place) for f in fields}
        self._views: dict[str, np.ndarray] = {}
        self._located: tuple[np.ndarray, np.ndarray | None] | None = None
        #: A shard truncated while mapped reads as zeros, then raises (``sigbus.py``).
        self._guard = sigbus.Guard(store.location, [s.name for s in manifest.shards])

    def gather(self, spec: FixedField, indices: np.ndarray) -> np.ndarray:
        """Rows ``indices`` (global, checked) of array field ``spec``: one gather, a copy.

        Pass a new array per batch: the lookup for the last array object is reused.
        """
        flat = self._flat
        if flat is None:  # mapping now could land on memory that is no longer ours
            raise LoadwiseError(f"the mapping of `{self._store.location}` is closed.")
        layout = self._layouts[spec.name]
        owners = self._owners(indices)
        if self._guard.truncated:  # a shard found truncated: refused, never read as zeros
            self._guard.refuse([0] if owners is None else np.unique(owners).tolist())
        origin = layout.origin[0] if owners is None else layout.origin[owners]
        rows = take_rows(self._view(layout, flat), origin + indices * layout.stride)
        if layout.scalar:
            return rows
        return rows.view(spec.numpy_dtype).reshape(len(indices), *spec.shape)

    def _owners(self, indices: np.ndarray) -> np.ndarray | None:
        """The shard of each index (None: the only shard); the last answer is reused,
        since a batch asks once per field with the same array."""
        if self._located is not None and self._located[0] is indices:
            return self._located[1]
        owners = None
        if len(self._manifest.shards) != 1:
            owners = np.searchsorted(self._starts, indices, side="right") - 1
        if not self._all_mapped:
            self._map_shards(np.zeros(1, np.int64) if owners is None else owners)
        self._located = (indices, owners)
        return owners

    def close(self) -> None:
        """Unmap everything; gathers made before stay valid (they are copies)."""
        if self._flat is None:
            return
        self._flat = self._located = None
        self._views.clear()
        self._guard.remove()
        _unmap(self._base, self._total)

    def _view(self, layout: _Layout, flat: np.ndarray) -> np.ndarray:
        """The range as ``layout`` reads it: typed items, or overlapping rows of
        ``row_bytes``, one starting at every byte."""
        view = self._views.get(layout.name)
        if view is None:
            if layout.scalar:
                view = flat[: len(flat) - len(flat) % layout.itemsize].view(layout.dtype)
            else:
                count = max(len(flat) - layout.row_bytes + 1, 0)
                shape, strides = (count, layout.row_bytes), (1, 1)
                # writeable only so torch can wrap it (it warns on read-only arrays): the
                # files are mapped read-only and nothing writes through it
                view = as_strided(flat, shape=shape, strides=strides)
            self._views[layout.name] = view
        return view

    def _map_shards(self, owners: np.ndarray) -> None:
        for number in np.unique(owners[~self._mapped[owners]]).tolist():
            shard = self._manifest.shards[number]
            check_layout(shard, self._fields)
            with self._store.open(shard.name, shard.num_bytes) as file:
                if shard.num_bytes:
                    at = self._base + int(self._place[number])
                    flags = mmap.MAP_SHARED | _MAP_FIXED
                    _map(at, shard.num_bytes, mmap.PROT_READ, flags, file.fileno())
                    self._guard.add(number, at, shard.num_bytes)
            self._mapped[number] = True
        self._all_mapped = bool(self._mapped.all())


class _Layout:
    """Where an array field's rows lie in the range, in the units its view counts in: row
    ``i`` of shard ``k`` starts at ``origin[k] + i * stride``, ``i`` counted from the first
    sample of the dataset. Scalar fields (labels) are gathered as typed items, which costs
    a tenth of gathering 8-byte rows from the overlapping-rows view; others by byte."""

    def __init__(self, spec: FixedField, manifest: Manifest, place: np.ndarray) -> None:
        self.name, self.dtype = spec.name, spec.numpy_dtype
        self.itemsize, self.row_bytes = self.dtype.itemsize, spec.row_bytes
        values = np.array([s.buffers[spec.name]["values"].offset for s in manifest.shards])
        first_byte = place[:-1] + values.astype(np.int64)  # of each shard's first row
        self.scalar = spec.shape == () and not (first_byte % self.itemsize).any()
        unit = self.itemsize if self.scalar else 1
        self.stride = self.row_bytes // unit
        starts = manifest.shard_starts()[:-1]
        self.origin = first_byte // unit - starts * self.stride


_MAP_FAILED = ctypes.c_void_p(-1).value


def _map(at: int | None, length: int, prot: int, flags: int, fd: int = -1) -> int:
    address = libc().mmap(at, length, prot, flags, fd, 0)
    if address in (None, _MAP_FAILED):
        errno = ctypes.get_errno()
        raise LoadwiseError(
            f"cannot map {length:,} bytes: {os.strerror(errno)}. Too many shards for the "
            f"process's mapping limit (vm.max_map_count)? Pack with a larger `shard_bytes`."
        )
    return int(address)


_MADV_DONTNEED = 4  # Linux


def drop_pages(address: int, length: int) -> None:
    """Unmap the pages of ``[address, address + length)`` from this process only (Linux
    ``MADV_DONTNEED`` on a read-only file mapping): they stay in the page cache and the next
    read maps them again (a minor fault), but the process's PSS no longer counts them."""
    if not sys.platform.startswith("linux") or length <= 0:
        return
    page = mmap.PAGESIZE
    start = address // page * page
    libc().madvise(ctypes.c_void_p(start), ctypes.c_size_t(address + length - start),
                    _MADV_DONTNEED)  # fmt: skip


def _unmap(address: int, length: int) -> None:
    if libc().munmap(address, length) != 0:
        errno = ctypes.get_errno()
        raise LoadwiseError(f"cannot unmap {length:,} bytes: {os.strerror(errno)}.")
