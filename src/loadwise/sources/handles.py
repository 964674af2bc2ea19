"""Handles that must be opened anew in every process: h5py files, LMDB environments, zarr
stores; and the check that a file was not replaced or truncated while it was in use.

An h5py file opened before ``fork`` and read in the child gives corrupt reads
(pytorch/pytorch#11929): HDF5 in the child even re-uses the inherited open file when the
same path is opened again. An LMDB environment must not be used after ``fork``. None of
these handles pickles for spawned workers. ``PerProcess`` opens its handle on first use in
each process; in a forked child it first closes the inherited one (in the child only: the
parent's stays open), and pickling carries the way to open it, never the handle.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from loadwise.errors import IntegrityError, MissingExtraError

T = TypeVar("T")


def import_extra(module: str, extra: str) -> Any:
    """``module`` imported, or ``MissingExtraError`` naming the extra that installs it."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise MissingExtraError(
            f"reading this needs `{module.split('.')[0]}`: pip install 'loadwise[{extra}]'"
        ) from exc


class PerProcess(Generic[T]):
    """A handle opened by ``opener()`` on first use in each process, closed by ``closer``."""

    def __init__(self, opener: Callable[[], T], closer: Callable[[T], None]) -> None:
        self._opener, self._closer = opener, closer
        self._handle: T | None = None
        self._pid = -1

    def get(self) -> T:
        """This process's handle: opened now if this process has none yet."""
        if self._handle is not None and self._pid != os.getpid():
            self._drop_inherited()
        if self._handle is None:
            self._handle = self._opener()
            self._pid = os.getpid()
        return self._handle

    @property
    def is_open(self) -> bool:
        """Whether this process holds an open handle (an inherited one does not count)."""
        return self._handle is not None and self._pid == os.getpid()

    def close(self) -> None:
        """Close this process's handle (an inherited one is only closed in this process)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            self._closer(handle)

    def _drop_inherited(self) -> None:
        """In a forked child: close the parent's handle here (the child's copies of its
        descriptors and library state), so a new open shares nothing with the parent."""
        handle, self._handle = self._handle, None
        with contextlib.suppress(Exception):  # whatever the copy's state, the child goes on
            self._closer(handle)  # type: ignore[arg-type]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handle": None, "_pid": -1}


@dataclass(frozen=True)
class FileSignature:
    """What identifies a file's content cheaply: device, inode, size, modification time."""

    path: str
    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | Path) -> FileSignature:
        stat = os.stat(path)
        return cls(str(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def check(self) -> None:
        """``IntegrityError`` if the file at ``path`` is no longer the one first seen."""
        try:
            now = FileSignature.of(self.path)
        except OSError as exc:
            raise IntegrityError(
                f"`{self.path}` is gone ({exc.strerror}) while it was in use: restore it, "
                f"then open it again."
            ) from exc
        if now == self:
            return
        if (now.device, now.inode) != (self.device, self.inode):
            what = "was replaced by another file"
        elif now.size < self.size:
            what = f"was truncated ({self.size:,} -> {now.size:,} bytes)"
        else:
            what = f"was modified ({self.size:,} -> {now.size:,} bytes, new modification time)"
        raise IntegrityError(
            f"`{self.path}` {what} while it was in use: reads could mix old and new data. "
            f"Open it again (and re-pack it, if a packed copy was made from it)."
        )


class OpenedFile:
    """What a file read through a ``PerProcess`` handle answers alike (HDF5, Zarr, LMDB):
    whether it changed since opened, whether this process holds it, and closing it."""

    signature: FileSignature
    _handle: PerProcess[Any]

    def check(self) -> None:
        """``IntegrityError`` if the file was replaced or truncated since it was opened."""
        self.signature.check()

    def close(self) -> None:
        self._handle.close()

    @property
    def is_open(self) -> bool:
        return self._handle.is_open
