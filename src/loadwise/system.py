"""Operating-system acts that several layers need (the writer, pack's staging, the remote
shard cache and its read-ahead helper): flush a file or a folder's entries to disk, tell
whether a process that left files behind is still running, and keep descriptors from
forked children."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path


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
