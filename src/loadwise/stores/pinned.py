"""A shard of a remote store as a ``ShardFile`` over its copy in the local cache: mapped
while pinned, pins kept while batches read the shard and let go by a janitor thread when
the process idles; and this process's number among forks (``_process``), checked once per
read instead of ``os.getpid``.
"""

from __future__ import annotations

import mmap
import os
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loadwise.errors import IntegrityError
from loadwise.stores.base import ShardFile
from loadwise.stores.cache import unpin

if TYPE_CHECKING:
    from loadwise.stores.remote import RemoteStore, _Local


#: Seconds an idle process keeps the copies its last batch read pinned.
HOLD = 0.2


class _Janitor(threading.Thread):
    """Unpins the copies a process holds once it has started no batch for ``HOLD`` seconds
    (a worker waiting for its queue to drain must not keep copies another one needs
    evicted); ends with the store or the process."""

    def __init__(self, store: RemoteStore, local: _Local) -> None:
        super().__init__(name="loadwise-unpin", daemon=True)
        self._store, self._local = weakref.ref(store), weakref.ref(local)
        self.start()

    def run(self) -> None:
        while True:
            time.sleep(HOLD / 2)
            local = self._local()
            if local is None or self._store() is None or local.pid != _process():
                return
            if not local.busy and time.monotonic() - local.since >= HOLD:
                for file in local.held():
                    file.release()
            del local


class RemoteShardFile(ShardFile):
    """A shard of a remote store as a ``ShardFile`` over its cached copy: fetched, pinned and
    mapped at first read, read from the mapping (no system call, no lock: reads cost what a
    memory copy costs), unpinned when the store lets it go (``release``), pinned again (or
    fetched again) at the next read. A read that holds the old mapping when it is let go
    still reads the right bytes: the mapping keeps the file's content until it ends."""

    def __init__(self, store: RemoteStore, spec: Any) -> None:
        super().__init__(-1, spec.name, spec.num_bytes, store.location)
        self._fd = None
        self._store, self._spec, self._closed = store, spec, False
        self._pid = _process()
        self._view: np.ndarray | None = None  # the mapped copy, while pinned
        self._lock = threading.RLock()  # re-entered: waiting for room lets every pin go
        self.copy = store._copy(spec)

    def fileno(self) -> int:
        self._bytes()
        fd = self._fd
        return self.fileno() if fd is None else fd  # let go meanwhile: pin again

    def read(self, length: int, offset: int) -> bytes:
        data = self._bytes()[offset : offset + length]
        if len(data) != length:
            raise self._ended_early()
        return data.tobytes()

    def read_into(self, buffer: memoryview, offset: int) -> None:
        out = np.frombuffer(buffer, np.uint8)
        data = self._bytes()[offset : offset + out.size]
        if len(data) != out.size:
            raise self._ended_early()
        out[:] = data

    def read_spans(self, buffer: memoryview, spans: Any) -> None:
        view, out, at = self._bytes(), np.frombuffer(buffer, np.uint8), 0
        for offset, length in spans:
            if offset + length > len(view):
                raise self._ended_early()
            out[at : at + length] = view[offset : offset + length]
            at += length

    def read_rows(
        self, into: np.ndarray, at: np.ndarray, base: int, size: int, local: np.ndarray
    ) -> None:
        """One gather from the mapped copy (not a call per row)."""
        end = base + (int(local.max()) + 1) * size
        view = self._bytes()
        if end > len(view):
            raise self._ended_early()
        into[at] = view[base:end].reshape(-1, size)[local]

    def inode(self) -> int:
        """The inode of the copy this file has pinned now (-1 if none)."""
        fd = self._fd
        try:
            return -1 if fd is None else os.fstat(fd).st_ino
        except OSError:
            return -1

    def release(self) -> None:
        """Unpin the copy and drop this file's mapping of it (reads under way keep theirs)."""
        with self._lock:
            fd, self._fd, self._view = self._fd, None, None
            if fd is not None and self._pid == _process():
                unpin(fd)
                self._store._here().drop(self)

    def close(self) -> None:
        self._closed = True
        self.release()

    def _bytes(self) -> np.ndarray:
        """The mapped copy, pinned (fetched first if need be)."""
        view = self._view
        if view is not None and self._pid == _FORKS[0]:
            return view
        if self._closed:
            raise IntegrityError(f"shard `{self.name}` in `{self.location}` is closed.")
        with self._lock:
            if self._pid != _process():  # a forked child: the parent's pin is not ours
                self._fd, self._view, self._pid = None, None, _process()
            if self._view is None:
                self.copy = self._store._copy(self._spec)  # this process's cache
                fd = self._store.acquire(self._spec)
                try:
                    self._view = _mapped(self.copy, fd, self.size)
                except BaseException:
                    unpin(fd)
                    raise
                self._fd = fd
                self._store._here().hold(self)
            return self._view


def _mapped(copy: Path, pinned: int, size: int) -> np.ndarray:
    """The copy at ``copy`` (the file ``pinned`` holds) mapped read-only as bytes, through a
    descriptor of its own: a mapping keeps its descriptor open, and the pin's lock must go
    when the pin is closed, not when the last read of the mapping ends."""
    if size == 0:
        return np.empty(0, np.uint8)
    fd = os.open(copy, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        if os.fstat(fd).st_ino != os.fstat(pinned).st_ino:
            raise IntegrityError(f"the cached copy `{copy}` was replaced while pinned.")
        return np.frombuffer(mmap.mmap(fd, 0, access=mmap.ACCESS_READ), np.uint8)
    finally:
        os.close(fd)


#: This process's number among the forks of the first one: a forked child's differs from its
#: parent's (``os.getpid`` is a system call here, and streaming checks once per read).
_FORKS = [0]
os.register_at_fork(after_in_child=lambda: _FORKS.__setitem__(0, _FORKS[0] + 1))


def _process() -> int:
    return _FORKS[0]


__all__ = ["HOLD", "RemoteShardFile"]
