"""Operating-system acts that several layers need (the writer, pack's staging, the remote
shard cache and its read-ahead helper): write in pieces the page cache takes quickly, flush
a file or a folder's entries to disk, tell whether a process that left files behind is
still running, and keep descriptors from forked children."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from pathlib import Path
from typing import Any

#: Largest single write into the page cache. The kernel sizes page-cache folios by the
#: write: 4 MiB writes get 2 MiB folios, which a VM that reports free 2 MiB blocks to its
#: host (free page reporting, as this one) must have backed again on first touch. 92 MiB
#: into new files: 308-627 MB/s in 4 MiB writes, 4.7-4.9 GB/s in 1 MiB ones (3 rounds,
#: session 10). How much is already backed depends on what was freed lately: in another
#: state (session 11) 1 MiB writes ran at 0.41-0.53 GB/s and 64-256 KiB ones at 3.7-4.2 GB/s
#: only until the recently freed pages ran out; smaller pieces delay the cost, not avoid it.
WRITE_BYTES = 2**20


#: ``errno`` values that mean the disk has no room for what is written.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: ``errno`` values that mean this user may not write there.
NOT_ALLOWED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def write_advice(exc: OSError, room: str, allowed: str, other: str) -> str:
    """The advice among ``room`` (no space), ``allowed`` (no permission) and ``other`` that
    fits ``exc``, an operating-system error met while writing."""
    if exc.errno in NO_ROOM:
        return room
    return allowed if exc.errno in NOT_ALLOWED else other


def write_all(fd: int, data: Any, offset: int | None = None) -> int:
    """Write every byte of ``data`` (any buffer) to ``fd`` in pieces of ``WRITE_BYTES``, at
    ``offset`` (``pwrite``) or at the file position; the bytes written."""
    view, at = memoryview(data).cast("B"), 0
    while at < len(view):
        piece = view[at : at + WRITE_BYTES]
        at += os.write(fd, piece) if offset is None else os.pwrite(fd, piece, offset + at)
    return at


class PieceWriter:
    """A file object over ``fd`` whose writes go down in ``WRITE_BYTES`` pieces: a sink
    for ``pyarrow.PythonFile`` (Arrow writes each column buffer in one call otherwise).
    ``fd`` stays open: the caller closes it."""

    closed = False

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, data: Any) -> int:
        return write_all(self.fd, data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def fsync_path(path: Path) -> None:
    """Flush a written file, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ForkClosedFds:
    """Descriptors this process keeps to itself (lock files, pipe ends): a forked child
    closes its copies at once, or a lock or pipe its parent holds would stay open as long as
    the child lives. Add and remove under ``lock``, which a fork waits for: none is missed."""

    def __init__(self) -> None:
        self.fds: set[int] = set()
        self.lock = threading.Lock()
        os.register_at_fork(
            before=self._before, after_in_parent=self._after, after_in_child=self._in_child
        )

    def _before(self) -> None:
        self.lock.acquire()

    def _after(self) -> None:
        self.lock.release()

    def _in_child(self) -> None:
        self.lock = threading.Lock()
        for fd in list(self.fds):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()
