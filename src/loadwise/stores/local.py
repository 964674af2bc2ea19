"""Shards as files in a local folder.

Files are opened without following symbolic links and without blocking (a FIFO or device
named like a shard is refused after ``fstat``, never waited on). Each shard's identity
(device, inode, size, modification and change times) is pinned when the manifest is read,
through the same open folder, so the manifest and the shards a reader sees belong to one
dataset; every later open (in this process or a DataLoader worker) must find the same file,
or it is an ``IntegrityError`` saying the dataset changed while open. Reads go through the
descriptor that was checked, so what was verified is what is served.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import NamedTuple

from loadwise.errors import FormatError, IntegrityError
from loadwise.stores.base import MANIFEST_NAME, ShardFile

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_DIRECTORY", 0)
#: A manifest larger than this is refused before reading (about 250,000 shards' worth).
MAX_MANIFEST_BYTES = 1 << 30


class Identity(NamedTuple):
    """What makes a file the same file: where it is, and that it was not rewritten (the
    change time moves with any write, even one that restores the modification time)."""

    mode: int
    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> Identity:
        kind = stat.S_IFMT(info.st_mode)
        return cls(kind, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class LocalStore:
    """A packed dataset in the folder ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.location = str(self.root)
        #: Each file's identity as first seen (the folder's listing when the manifest was
        #: read); kept through pickling, so workers check against what the opener saw.
        self._pinned: dict[str, Identity] = {}
        self._listed = False
        self._manifest: Identity | None = None

    def read_manifest(self) -> bytes:
        """The manifest's bytes; every shard's identity is pinned through the same open
        folder, so a dataset replaced meanwhile cannot mix into what was read."""
        try:
            folder = os.open(self.root, _DIR_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            raise FormatError(
                f"`{self.root}` is not a folder: pass the folder `loadwise pack` wrote."
            ) from None
        except OSError as exc:
            raise FormatError(f"cannot open `{self.root}`: {exc.strerror}.") from exc
        try:
            data, self._manifest = self._read_manifest(folder)
            with os.scandir(folder) as entries:
                listing = {e.name: Identity.of(e.stat(follow_symlinks=False)) for e in entries}
        finally:
            os.close(folder)
        listing.pop(MANIFEST_NAME, None)
        self._pinned, self._listed = listing, True
        return data

    def check(self, name: str, size: int) -> None:
        found = self._pinned.get(name)
        if found is None and not self._listed:
            try:
                found = Identity.of(os.lstat(self.root / name))
            except FileNotFoundError:
                found = None
        if found is None:
            raise self._missing(name)
        self._check_kind(name, found.mode)
        self._check_size(name, size, found.size)

    def open(self, name: str, size: int) -> ShardFile:
        fd = self._open(name)
        try:
            found = Identity.of(os.fstat(fd))
            self._check_kind(name, found.mode)
            pinned = self._pinned.setdefault(name, found)
            if pinned != found:
                raise self._changed(name, pinned, found)
            self._check_size(name, size, found.size)
        except BaseException:
            os.close(fd)
            raise
        return ShardFile(fd, name, size, self.location)

    def __repr__(self) -> str:
        return f"LocalStore({self.location!r})"

    def _read_manifest(self, folder: int) -> tuple[bytes, Identity]:
        try:
            fd = os.open(MANIFEST_NAME, _OPEN_FLAGS, dir_fd=folder)
        except FileNotFoundError:
            raise FormatError(
                f"`{self.root}` has no {MANIFEST_NAME}: it is not a loadwise dataset, or its "
                f"`pack` did not finish. Run `loadwise pack SOURCE {self.root}`."
            ) from None
        except OSError as exc:
            raise FormatError(f"cannot read `{self.root / MANIFEST_NAME}`: {_why(exc)}") from exc
        found = Identity.of(os.fstat(fd))
        if found.mode != stat.S_IFREG:
            os.close(fd)
            raise FormatError(
                f"`{self.root / MANIFEST_NAME}` is {_kind(found.mode)}, not a regular file; "
                f"re-run `loadwise pack`."
            )
        with os.fdopen(fd, "rb") as handle:
            if found.size > MAX_MANIFEST_BYTES:
                raise FormatError(
                    f"`{self.root / MANIFEST_NAME}` is {found.size:,} bytes, over the "
                    f"{MAX_MANIFEST_BYTES:,} a manifest may take; it is not one `pack` wrote."
                )
            try:
                return handle.read(MAX_MANIFEST_BYTES + 1), found
            except OSError as exc:
                raise FormatError(
                    f"cannot read `{self.root / MANIFEST_NAME}`: {_why(exc)}"
                ) from exc

    def _open(self, name: str) -> int:
        try:
            return os.open(self.root / name, _OPEN_FLAGS)
        except FileNotFoundError:
            raise self._missing(name) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
                raise IntegrityError(
                    f"shard `{name}` in `{self.root}` is a symbolic link; loadwise reads only "
                    f"the files `pack` wrote. Re-run `loadwise pack`."
                ) from None
            raise FormatError(f"cannot open shard `{name}` in `{self.root}`: {_why(exc)}") from exc

    def _missing(self, name: str) -> IntegrityError:
        if name in self._pinned:
            return IntegrityError(
                f"shard `{name}` is missing from `{self.root}`: it was deleted after the "
                f"dataset was opened{self._replaced()}"
            )
        return IntegrityError(
            f"shard `{name}` is missing from `{self.root}`: re-run `loadwise pack`."
        )

    def _changed(self, name: str, pinned: Identity, found: Identity) -> IntegrityError:
        what = "replaced by another file" if pinned[:3] != found[:3] else "rewritten"
        return IntegrityError(
            f"shard `{name}` in `{self.root}` was {what} after the dataset was opened "
            f"(now {found.size:,} bytes, then {pinned.size:,}){self._replaced()}"
        )

    def _replaced(self) -> str:
        """The end of a message about a shard that changed: was the whole dataset replaced?"""
        try:
            now: Identity | None = Identity.of(os.lstat(self.root / MANIFEST_NAME))
        except OSError:
            now = None
        if self._manifest is not None and now != self._manifest:
            return (
                ": the dataset was replaced while open (`pack --overwrite`?). Open it again "
                "to read the new one."
            )
        return ": re-run `loadwise pack`, or `loadwise verify` to see what else changed."

    def _check_kind(self, name: str, mode: int) -> None:
        if mode != stat.S_IFREG:
            raise IntegrityError(
                f"shard `{name}` in `{self.root}` is {_kind(mode)}, not a regular file; "
                f"loadwise reads only the files `pack` wrote. Re-run `loadwise pack`."
            )

    def _check_size(self, name: str, size: int, actual: int) -> None:
        if actual != size:
            what = "truncated" if actual < size else "longer than written"
            raise IntegrityError(
                f"shard `{name}` is {actual:,} bytes, the manifest says {size:,}: the file is "
                f"{what}; re-run `loadwise pack`, or `loadwise verify {self.root}`."
            )


_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
}


def _kind(mode: int) -> str:
    return _KINDS.get(mode, "a special file")


def _why(exc: OSError) -> str:
    """An OS error as a sentence with what to do."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{exc.strerror}; give this user read access."
    return f"{exc.strerror or exc}."
