"""Worker batches through reusable shared memory: a ring of batch slots per worker.

torch sends each tensor a worker returns through a fresh shared-memory segment (zeroed
pages, a file descriptor passed over a socket per tensor, a handshake each): ~2.3 ms per
batch here whatever the batch holds, which made in-RAM data with 2 workers ~20x slower than
with 0. Instead each worker gets a ring of slots in one ``memfd`` the main process made
before the workers started (fork shares the mapping; spawn passes the descriptor once).
While a worker makes a batch, its outputs are allocated in its next free slot
(``recycle.empty`` and the decoders' batch buffer ask here first), so the gather or decode
writes straight into shared memory; any other tensor of the batch is copied in. Only a small
``Shipped`` record (slot, offsets, shapes) goes through torch's queue, so order, resume and
fault handling stay torch's. The main process turns it into tensors that view the slot; the
slot is free again when the last of them is dropped (a finalizer on their common base).

A slot's state lives in the ring's header: FREE -> WRITTEN (the worker filled it) -> HELD
(the main process received it) -> FREE (nothing views it any more). A worker that finds no
free slot (the consumer keeps many batches) or a batch it cannot describe (a custom
collate's own container, a dtype numpy lacks) sends that batch the torch way.
Slots are 1 GiB of address space each; only the pages a batch writes cost memory, so a
ring holds at most ``slots`` x the largest batch.
"""

from __future__ import annotations

import math
import mmap
import multiprocessing
import os
import secrets
import threading
import time
import weakref
from typing import Any, NamedTuple

import numpy as np
import torch

from loadwise.gather import recycle

SLOT_BYTES = 1 << 30
HEADER = 4096
ALIGN = 64
FREE, WRITTEN, HELD = 0, 1, 2
#: Slots beyond the prefetch depth (``prefetch_factor`` a worker). None: a worker that
#: finds every slot in use (the consumer still holds the batch before, as at an epoch's
#: start, when the last batch of the epoch before is still referenced) waits up to
#: ``WAIT_SECONDS`` for one, then sends that batch torch's way. A spare slot per worker would
#: spare that wait but hold one more batch for the loader's life (a third more memory of
#: 256x256 JPEG batches with 2 workers, measured: 75 -> 50 MB over the idle tree).
SPARE_SLOTS = 0
WAIT_SECONDS = 0.05

_LIVE: weakref.WeakValueDictionary[str, Rings] = weakref.WeakValueDictionary()


class Piece(NamedTuple):
    """Where one tensor of a shipped batch lies in its slot."""

    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # bytes
    dtype: str


class Ring:
    """One worker's slots in one memfd, mapped in the main process and in the worker."""

    def __init__(self, slots: int, fd: int | None = None) -> None:
        self.slots = slots
        size = HEADER + slots * SLOT_BYTES
        if fd is None:
            fd = os.memfd_create("loadwise-batches", os.MFD_CLOEXEC)
            os.ftruncate(fd, size)
        self.fd = fd
        weakref.finalize(self, os.close, fd)
        self.map = mmap.mmap(fd, size)
        self.states = np.frombuffer(self.map, np.int64, count=slots)
        self.address = np.frombuffer(self.map, np.uint8, count=1).ctypes.data
        self.owner = 0  # the worker pid that last claimed this ring

    def claim(self) -> None:
        """In a (new) worker: slots a dead predecessor wrote but nobody received are free."""
        if self.owner != os.getpid():
            self.owner = os.getpid()
            self.states[self.states == WRITTEN] = FREE

    def take(self) -> int | None:
        """The lowest free slot, marked WRITTEN; None if all are in use. Lowest first: a
        slot's pages stay once written, so a worker that never gets ahead of the consumer
        touches only the slots it needs (2 of 3 for JPEG batches: 25 MB less a worker)."""
        free = np.flatnonzero(self.states == FREE)
        if not len(free):
            return None
        slot = int(free[0])
        self.states[slot] = WRITTEN
        return slot

    def release(self, slot: int) -> None:
        self.states[slot] = FREE

    def start(self, slot: int) -> int:
        """Byte offset of ``slot`` in the mapping."""
        return HEADER + slot * SLOT_BYTES


class Rings:
    """A ring per worker of one loader; ``writer()`` in a worker, ``Shipped`` back here."""

    def __init__(self, workers: int, slots: int) -> None:
        self.token = secrets.token_hex(8)
        self.rings = [Ring(slots) for _ in range(workers)]
        _LIVE[self.token] = self

    def writer(self) -> SlotWriter | None:
        """In a DataLoader worker: a writer over its ring's next free slot, or None."""
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        if info is None or info.id >= len(self.rings):
            return None
        ring = self.rings[info.id]
        ring.claim()
        slot = ring.take()
        deadline = time.monotonic() + WAIT_SECONDS
        while slot is None and time.monotonic() < deadline:
            time.sleep(0.0005)  # the consumer is about to drop a batch of this ring
            slot = ring.take()
        return None if slot is None else SlotWriter(self.token, info.id, ring, slot)

    def __reduce__(self) -> Any:
        """Into a spawned worker: the descriptors go along (only while a process starts)."""
        from multiprocessing.context import get_spawning_popen
        from multiprocessing.reduction import DupFd

        if get_spawning_popen() is None:
            return (_none, ())  # an ordinary pickle: no transport over there
        fds = [DupFd(r.fd) for r in self.rings]
        return (_rebuild_rings, (self.token, self.rings[0].slots, fds))


def _none() -> None:
    return None


def _rebuild_rings(token: str, slots: int, fds: list[Any]) -> Rings:
    rings = Rings.__new__(Rings)
    rings.token = token
    rings.rings = [Ring(slots, fd.detach()) for fd in fds]
    return rings


def rings_for(workers: int, prefetch_factor: int | None, pin_memory: bool) -> Rings | None:
    """Rings for a loader with ``workers`` making whole batches, where this system can."""
    if workers < 1 or pin_memory or not hasattr(os, "memfd_create"):
        return None
    if multiprocessing.get_start_method(allow_none=True) not in (None, "fork", "spawn",
                                                                   "forkserver"):  # fmt: skip
        return None
    return Rings(workers, (prefetch_factor or 2) + SPARE_SLOTS)


class SlotWriter:
    """While a worker makes one batch: allocations in its slot, then ``ship``."""

    def __init__(self, token: str, worker: int, ring: Ring, slot: int) -> None:
        self.token, self.worker, self.ring, self.slot = token, worker, ring, slot
        self.start = ring.start(slot)
        self.low = ring.address + self.start
        self.used = 0
        self.lock = threading.Lock()

    def __enter__(self) -> SlotWriter:
        recycle.set_destination(self.empty)
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        recycle.set_destination(None)
        if kind is not None:
            self.ring.release(self.slot)

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
        """An uninitialised array in the slot, or None when the slot is full."""
        nbytes = math.prod(shape) * dtype.itemsize
        with self.lock:
            offset = self.used
            if offset + nbytes > SLOT_BYTES:
                return None
            self.used = offset + (nbytes + ALIGN - 1) // ALIGN * ALIGN
        raw = np.frombuffer(self.ring.map, np.uint8, nbytes, self.start + offset)
        return raw.view(dtype).reshape(shape)

    def ship(self, item: Any, count: int = 0, seconds: float | None = None) -> Any:
        """``item`` with its tensors as ``Piece``\\ s of this slot (a ``Shipped``), or ``item``
        itself, the slot freed, when some part cannot go this way. ``count``: ``item`` is a
        list of that many batches (a chunk); ``seconds``: what making it took, reported."""
        recycle.set_destination(None)
        try:
            layout = self._layout(item)
        except _Unshippable:
            self.ring.release(self.slot)
            return item
        return Shipped(self.token, self.worker, self.slot, layout, count, seconds, self.used)

    def _layout(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return self._piece(value)
        kind = type(value)
        if kind is dict:
            return {k: self._layout(v) for k, v in value.items()}
        if kind is list or kind is tuple:
            return kind(self._layout(v) for v in value)
        if isinstance(value, (Piece, Shipped, Ticket)) or kind.__module__ == "torch":
            raise _Unshippable
        if isinstance(value, dict | list | tuple):  # a container of the user's: torch's way
            raise _Unshippable
        return value

    def _piece(self, tensor: torch.Tensor) -> Piece:
        dtype = _NUMPY.get(tensor.dtype)
        if dtype is None or tensor.device.type != "cpu" or tensor.layout != torch.strided:
            raise _Unshippable
        shape, item = tuple(tensor.shape), tensor.element_size()
        at = tensor.data_ptr() - self.low
        if 0 <= at < SLOT_BYTES:  # written here by the gather or decode: nothing to copy
            strides = tuple(s * item for s in tensor.stride())
            if at + _span(shape, strides, item) <= SLOT_BYTES and min(strides, default=0) >= 0:
                return Piece(at, shape, strides, dtype)
        out = self.empty(shape, np.dtype(dtype))
        if out is None:
            raise _Unshippable
        torch.from_numpy(out).copy_(tensor)
        return Piece(out.ctypes.data - self.low, shape, out.strides, dtype)


class _Unshippable(Exception):
    """A part of a batch the slot cannot describe: the whole batch goes torch's way."""


def _span(shape: tuple[int, ...], strides: tuple[int, ...], item: int) -> int:
    if any(n == 0 for n in shape):
        return 0
    return sum((n - 1) * s for n, s in zip(shape, strides, strict=True)) + item


_NUMPY = {
    torch.bool: "bool", torch.uint8: "uint8", torch.int8: "int8", torch.int16: "int16",
    torch.int32: "int32", torch.int64: "int64", torch.float16: "float16",
    torch.float32: "float32", torch.float64: "float64", torch.complex64: "complex64",
    torch.complex128: "complex128",
}  # fmt: skip


class Shipped:
    """What a worker sends instead of a batch: its slot and where each tensor lies in it
    (``count`` > 0: a chunk of that many batches), with the time and bytes it took."""

    def __init__(
        self, token: str, worker: int, slot: int, layout: Any,
        count: int = 0, seconds: float | None = None, nbytes: int = 0,
    ) -> None:  # fmt: skip
        self.token, self.worker, self.slot, self.layout = token, worker, slot, layout
        self.count, self.seconds, self.nbytes = count, seconds, nbytes

    def __reduce__(self) -> Any:
        return (_arrived, (self.token, self.worker, self.slot, self.layout,
                           self.count, self.seconds, self.nbytes))  # fmt: skip


class Ticket:
    """A received slot in the main process; freed when dropped unopened (a stale batch
    torch throws away), else when the tensors ``open`` made are all gone."""

    def __init__(
        self, ring: Ring, slot: int, layout: Any,
        count: int = 0, seconds: float | None = None, nbytes: int = 0,
    ) -> None:  # fmt: skip
        self.ring, self.slot, self.layout = ring, slot, layout
        self.count, self.seconds, self.nbytes = count, seconds, nbytes
        self._free = weakref.finalize(self, ring.release, slot)

    def open(self) -> Any:
        """The batch as tensors viewing the slot."""
        ring = self.ring
        base = np.frombuffer(ring.map, np.uint8, SLOT_BYTES, ring.start(self.slot))
        weakref.finalize(base, ring.release, self.slot)
        self._free.detach()
        return _rebuilt(self.layout, base)


def _arrived(
    token: str, worker: int, slot: int, layout: Any,
    count: int = 0, seconds: float | None = None, nbytes: int = 0,
) -> Ticket:  # fmt: skip
    """Unpickled in the main process: the slot is held from now on."""
    rings = _LIVE.get(token)
    if rings is None:
        raise RuntimeError("a batch arrived for a loader that no longer exists")
    ring = rings.rings[worker]
    ring.states[slot] = HELD
    return Ticket(ring, slot, layout, count, seconds, nbytes)


def _rebuilt(value: Any, base: np.ndarray) -> Any:
    if isinstance(value, Piece):
        array = np.ndarray(value.shape, value.dtype, base, value.offset, value.strides)
        return torch.from_numpy(array)
    kind = type(value)
    if kind is dict:
        return {k: _rebuilt(v, base) for k, v in value.items()}
    if kind is list or kind is tuple:
        return kind(_rebuilt(v, base) for v in value)
    return value
