"""Decoded images shared by the process that opened a dataset and all its DataLoader workers.

One anonymous shared file (``memfd``) holds a header of counters, a directory (per sample
and image field: state, byte offset, height, width, channels) and an arena of ``limit``
bytes of decoded pixels, channels-last. It is created at open, before workers start:
forked workers inherit the mapping, spawned ones receive the file descriptor. Pages cost
nothing until written, and the file has no name (nothing in ``/dev/shm``): its memory is
freed when the last process holding it closes it or dies.

Fill-once, no eviction: the arena fills in first-decoded order and then stays as it is;
once full, misses are decoded and not cached. Under shuffled epochs any fixed set of cached
samples hits as often as an LRU (budget / dataset), and a fixed set needs no coordinated
evictions between processes.

Concurrency: directory reads and writes happen under a POSIX record lock on the file
(``fcntl.lockf``), taken once per step of a batch (look up; reserve; publish), never per
sample. Space is reserved (``PENDING``) under the lock, pixels are copied outside it, and
entries become ``READY`` under the lock again; the lock's system calls order memory, so
whoever sees an entry ready sees its bytes (weakly ordered CPUs included). A sample two
workers decode at once is reserved by one of them only. The kernel drops a dead worker's
lock; space it had reserved stays pending (never served, never reused).
"""

from __future__ import annotations

import fcntl
import math
import mmap
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from multiprocessing import reduction
from multiprocessing.context import get_spawning_popen
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from loadwise.errors import LoadwiseError
from loadwise.gather.rows import TORCH_GATHER_BYTES, take_rows_into
from loadwise.gather.threads import PARALLEL_BYTES, batch_threads, threads

EMPTY, PENDING, READY = 0, 1, 2
#: Directory entry columns.
STATE, OFFSET, HEIGHT, WIDTH, CHANNELS = range(5)
_HEADER_BYTES = 4096
# Header counters (int64): arena bytes handed out, hits, misses, ready entries.
_USED, _HITS, _MISSES, _ENTRIES = range(4)


class SharedCache:
    """``limit`` bytes of decoded images for ``samples`` x ``fields`` image fields, shared by
    every process of a DataLoader; the counters (``hits``, ``misses``) are shared too.

    Pickled while spawning a worker it is shared with it; pickled any other way (a copy of
    the dataset) the copy gets a new, empty cache of the same size.
    """

    def __init__(self, limit: int, samples: int, fields: int, *, fd: int | None = None) -> None:
        self.limit, self.samples, self.fields = limit, samples, fields
        self._directory_bytes = samples * fields * 5 * 8 if limit else 0
        size = _HEADER_BYTES + self._directory_bytes + limit
        if fd is None:
            fd = os.memfd_create("loadwise-cache", os.MFD_CLOEXEC)
            os.ftruncate(fd, size)  # sparse: pages are allocated when first written
        self._fd = fd
        self._map: mmap.mmap | None = mmap.mmap(fd, size, mmap.MAP_SHARED)
        self._views: dict[Any, np.ndarray] = {}
        self._last = (0, 0, 0, 0)
        self._pid, self._threads = os.getpid(), threading.Lock()
        self._release = weakref.finalize(self, _release, self._map, fd)

    # -- the three locked steps of a batch ---------------------------------------------------

    def lookup(self, idx: np.ndarray) -> np.ndarray:
        """Directory entries ``(len(idx), fields, 5)`` of a batch (a copy); a sample whose
        fields are all ready counts as a hit, any other as a miss."""
        if not self.limit:  # nothing is ever cached: count, and leave the directory untouched
            found = np.zeros((len(idx), self.fields, 5), np.int64)
            with self._locked():
                self._header()[_MISSES] += len(idx)
            return found
        with self._locked():
            found = self._directory()[idx]
            hits = int(np.count_nonzero((found[..., STATE] == READY).all(axis=1)))
            header = self._header()
            header[_HITS] += hits
            header[_MISSES] += len(idx) - hits
        return found

    def reserve(self, idx: np.ndarray, shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Space for images ``(len(idx), fields)`` of ``shapes`` ``(..., 3)`` (H, W, C) not yet
        cached by anyone, while the arena has room: ``(reserved mask, byte offsets)``."""
        sizes = shapes.prod(axis=-1)
        offsets = np.zeros_like(sizes)
        if not self.limit:
            return np.zeros(sizes.shape, bool), offsets
        with self._locked():
            directory, header = self._directory(), self._header()
            current = directory[idx]
            free = current[..., STATE] == EMPTY
            ends = np.cumsum(sizes[free])
            fits = ends <= self.limit - header[_USED]  # a prefix: first come, first cached
            mask = np.zeros_like(free)
            mask[free] = fits
            if not fits.any():
                return mask, offsets
            offsets[mask] = header[_USED] + ends[fits] - sizes[free][fits]
            current[mask, STATE] = PENDING
            current[mask, OFFSET] = offsets[mask]
            current[mask, HEIGHT : CHANNELS + 1] = shapes[mask]
            directory[idx] = current
            header[_USED] += int(ends[fits][-1])
        return mask, offsets

    def publish(self, idx: np.ndarray, mask: np.ndarray) -> None:
        """Mark reserved entries ready: their bytes are written."""
        rows, fields = np.nonzero(mask)
        with self._locked():
            self._directory()[idx[rows], fields, STATE] = READY
            self._header()[_ENTRIES] += len(rows)

    # -- pixels ------------------------------------------------------------------------------

    def write(self, offsets: Sequence[int], images: Sequence[np.ndarray]) -> None:
        """Copy ``images`` (``(H, W, C)`` each, any strides) to their reserved ``offsets``.

        Row by row, straight from the decoded batch: a gathered or reshaped copy first would
        be a large temporary, and glibc keeps such heap in DataLoader workers (their memory
        grew epoch after epoch, measured). Each sample is written once per training run."""
        data = self._data()

        def copy(part: slice) -> None:
            for start, image in zip(offsets[part], images[part], strict=True):
                data[start : start + image.size].reshape(image.shape)[...] = image

        _in_pieces(copy, len(offsets), sum(image.nbytes for image in images))

    def gather(self, offsets: np.ndarray, out: np.ndarray) -> None:
        """Ready images at ``offsets`` into ``out`` ``(k, H, W, C)``, a fresh contiguous
        buffer: one gather, shared out among the batch's threads when large."""
        size = math.prod(out.shape[1:])
        flat = out.reshape(len(offsets), size)  # a view: ``out`` is a fresh buffer
        if size and not np.any(offsets % size):  # slots of one size: a plain 2-D take
            slots = self._data()[: self.limit // size * size].reshape(-1, size)
            rows = offsets // size
            if flat.nbytes >= TORCH_GATHER_BYTES and rows.dtype == np.int64:
                take_rows_into(slots, rows, flat)  # one gather, as eager's (``gather/rows.py``)
                return

            def copy(part: slice) -> None:
                np.take(slots, rows[part], axis=0, out=flat[part], mode="clip")

        else:  # images of several sizes in the arena: rows starting at any byte

            def copy(part: slice) -> None:
                flat[part] = self._rows(size)[offsets[part]]

        _in_pieces(copy, len(offsets), flat.nbytes)

    def image(self, entry: np.ndarray) -> np.ndarray:
        """One ready image ``(H, W, C)`` (a copy) from its directory entry."""
        height, width, channels = (int(v) for v in entry[HEIGHT : CHANNELS + 1])
        start = int(entry[OFFSET])
        size = height * width * channels
        return self._data()[start : start + size].reshape(height, width, channels).copy()

    # -- counters, pickling, closing ---------------------------------------------------------

    @property
    def hits(self) -> int:
        """Samples served from the cache, by every process sharing it."""
        return self._count(_HITS)

    @property
    def misses(self) -> int:
        """Samples that had to be decoded, by every process sharing it."""
        return self._count(_MISSES)

    @property
    def bytes(self) -> int:
        """Arena bytes handed out (ready or being written)."""
        return self._count(_USED)

    def __len__(self) -> int:
        """Decoded images held (one per sample and image field)."""
        return self._count(_ENTRIES)

    def __reduce__(self) -> tuple[Any, ...]:
        shape = (self.limit, self.samples, self.fields)
        if get_spawning_popen() is None or self._map is None:
            return (SharedCache, shape)
        return (_attach, (reduction.DupFd(self._fd), *shape))

    def close(self) -> None:
        """Unmap and close here; the memory goes when every process has closed or exited."""
        if self._map is not None:
            header = self._header()
            self._last = (int(header[0]), int(header[1]), int(header[2]), int(header[3]))
            self._views.clear()
            self._map = None
            self._release()

    def __repr__(self) -> str:
        return (
            f"SharedCache({len(self)} images, {self.bytes:,} of {self.limit:,} bytes, "
            f"hits={self.hits}, misses={self.misses})"
        )

    # -- internals ---------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._pid != os.getpid():  # a forked child: the parent's thread lock may be held
            self._pid, self._threads = os.getpid(), threading.Lock()
        with self._threads:  # record locks belong to the process, not the thread
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def _count(self, which: int) -> int:
        return int(self._header()[which]) if self._map is not None else self._last[which]

    def _view(self, key: str, dtype: type, count: int, offset: int) -> np.ndarray:
        view = self._views.get(key)
        if view is None:
            if self._map is None:
                raise LoadwiseError("the shared cache is closed; open the dataset again.")
            view = np.frombuffer(self._map, dtype, count=count, offset=offset)
            self._views[key] = view
        return view

    def _header(self) -> np.ndarray:
        return self._view("header", np.int64, 4, 0)

    def _directory(self) -> np.ndarray:
        flat = self._view("directory", np.int64, self.samples * self.fields * 5, _HEADER_BYTES)
        return flat.reshape(self.samples, self.fields, 5)

    def _data(self) -> np.ndarray:
        return self._view("data", np.uint8, self.limit, _HEADER_BYTES + self._directory_bytes)

    def _rows(self, size: int, writeable: bool = False) -> np.ndarray:
        """The arena as overlapping rows of ``size`` bytes, one starting at every byte."""
        data = self._data()
        count = max(self.limit - size + 1, 0)
        return as_strided(data, shape=(count, size), strides=(1, 1), writeable=writeable)


def _in_pieces(copy: Callable[[slice], None], count: int, nbytes: int) -> None:
    """``copy`` over ``count`` rows, on the batch's threads from ``PARALLEL_BYTES``: page
    faults of fresh shared memory (the cost of a first epoch) scale with cores."""
    pool = threads(batch_threads()) if nbytes >= PARALLEL_BYTES else None
    if pool is None:
        copy(slice(0, count))
    else:
        pool.for_each(lambda piece: copy(slice(piece.start, piece.stop)), count)


def _attach(fd: Any, limit: int, samples: int, fields: int) -> SharedCache:
    """The cache of the process that spawned this one (its descriptor passed along)."""
    return SharedCache(limit, samples, fields, fd=fd.detach())


def _release(mapping: mmap.mmap, fd: int) -> None:
    with suppress(BufferError):  # a view still alive somewhere: unmapped when it goes
        mapping.close()
    os.close(fd)
