"""A local folder of verified shard copies, bounded in bytes, shared by every process on the
machine (ranks, DataLoader workers, restarted runs).

Layout under ``root``::

    .loadwise-cache                      marker: the folder is a loadwise shard cache
    .lock                                the cache-wide lock (admission and eviction)
    <dataset>/<shard>.<xxh3>             a complete copy, verified, renamed into place
    <dataset>/.<shard>.<xxh3>.<pid>-<n>.part   a download in progress (its full size reserved)
    <dataset>/.<shard>.<xxh3>.lock       held by the one process downloading that shard

Rules, all with ``flock`` (released by the kernel when a process dies, so a killed process
never leaves a lock held or a partial copy counted):

- A copy counts only under its final name, renamed there after it was written, verified and
  fsynced. A download's file is counted at its full size while its process lives, and
  removed by the next admission once that process is gone.
- Copies plus downloads never exceed ``limit + slack`` (``slack``: the largest shard): each
  download is admitted under the cache-wide lock after evicting least recently used copies;
  read-ahead is admitted only within ``limit``.
- A reader holds a shared lock on the copy it reads (``pin``); eviction takes an exclusive
  lock without waiting, so a copy being read is never removed.
- One download per shard: the downloader holds the shard's lock file; others wait on it,
  then find the copy.
- Only files named as above are ever removed: nothing else in the folder is touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from loadwise.errors import ConfigError, LoadwiseError
from loadwise.system import NO_ROOM, ForkClosedFds, fsync_path, process_alive, write_advice

MARKER = ".loadwise-cache"
_COPY = re.compile(r"^[^.].*\.[0-9a-f]{16}$")
_PART = re.compile(r"^\.(?P<copy>.+)\.(?P<pid>\d+)-\d+\.part$")
_OPEN = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_counter = itertools.count()

#: Descriptors this process holds locks through, closed in a forked child at once.
_HELD = ForkClosedFds()


class CacheError(LoadwiseError, OSError):
    """The shard cache's folder could not take a copy (no space, no permission); names
    the folder and what to do."""


def cache_error(root: Path, shard: str, exc: OSError) -> CacheError:
    """``exc``, met while writing the copy of ``shard`` into the cache at ``root``, with
    what to do about it."""
    advice = write_advice(
        exc,
        room="free some space there, or give `cache_dir` a folder with room",
        allowed="give `cache_dir` a folder this user can write to",
        other="check that folder's disk",
    )
    return CacheError(
        f"cannot write shard `{shard}` into the shard cache at `{root}`: "
        f"{exc.strerror or exc}; {advice}. Nothing half-written is kept."
    )


@dataclass(frozen=True)
class CacheUse:
    """What the cache folder holds now: copies and downloads in progress, in bytes."""

    copies: int
    downloading: int

    @property
    def total(self) -> int:
        return self.copies + self.downloading


class ShardCache:
    """Bounded, process-shared shard copies in ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path, limit: int, slack: int = 0) -> None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ConfigError(f"`cache_limit` must be a number of bytes >= 1. Found: {limit!r}.")
        self.root, self.limit, self.slack = Path(root).expanduser().resolve(), limit, slack
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / MARKER).touch()
        self._sizes: dict[str, int] = {}  # path -> bytes, as of the last admission's scan

    def path(self, dataset: str, shard: str, checksum: str) -> Path:
        """Where the copy of ``shard`` (content ``checksum``) of ``dataset`` lives."""
        return self.root / dataset / f"{shard}.{checksum}"

    def pin(self, path: Path) -> int | None:
        """An open descriptor holding a shared lock on the copy at ``path`` (it cannot be
        evicted until closed), or None if there is no copy."""
        fd = _open_held(path, _OPEN)
        if fd is None:
            return None
        fcntl.flock(fd, fcntl.LOCK_SH)  # an eviction in progress holds it for a moment
        if os.fstat(fd).st_nlink == 0:  # evicted between open and lock
            unpin(fd)
            return None
        os.utime(fd)  # last use, for least-recently-used eviction
        return fd

    def fill(
        self,
        path: Path,
        size: int,
        write: Callable[[int], None],
        *,
        ahead: bool = False,
        keep: frozenset[Path] = frozenset(),
        on_wait: Callable[[], None] | None = None,
        patience: float = 600.0,
    ) -> bool:
        """Make the copy at ``path`` exist: ``write(fd)`` fills a reserved temporary file,
        which is then fsynced and renamed into place. Done once across processes: others
        wait for it. ``ahead`` (read-ahead) gives up, returning False, unless it fits within
        the limit now without evicting the copies in ``keep`` (those needed before it);
        otherwise this waits for readers to unpin copies (``on_wait`` should release this
        process's idle pins) up to ``patience`` seconds."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.parent / f".{path.name}.lock", on_wait):  # one downloader
            if path.exists():
                return True
            try:
                part = self._reserve(path, size, ahead, keep, on_wait, patience)
            except OSError as exc:
                if isinstance(exc, LoadwiseError | TimeoutError):
                    raise
                raise cache_error(self.root, path.name.rsplit(".", 1)[0], exc) from None
            if part is None:
                return False
            try:
                fd = os.open(part, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
                try:
                    write(fd)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                with self._cache_lock():  # a rename mid-scan may hide the file from a scan
                    os.rename(part, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(part)
                raise
            fsync_path(path.parent)
            return True

    def discard(self, path: Path, inodes: set[int]) -> None:
        """Remove the copy at ``path`` if it is one of ``inodes`` (found damaged), even while
        readers hold it (their mappings keep the old bytes); a copy put there since stays."""
        with self._cache_lock():
            try:
                if os.stat(path).st_ino in inodes:
                    os.unlink(path)
            except FileNotFoundError:
                pass

    def usage(self) -> CacheUse:
        """Bytes held now by copies and by downloads in progress (all datasets), taken under
        the cache lock and counting each file once (a rename seen mid-scan is one file)."""
        copies = downloading = 0
        seen: set[int] = set()
        with self._cache_lock():
            for entry, is_part in self._entries():
                stat = _stat(entry)
                if stat is None or stat.st_ino in seen:
                    continue
                seen.add(stat.st_ino)
                if is_part:
                    downloading += stat.st_size
                else:
                    copies += stat.st_size
        return CacheUse(copies, downloading)

    def _reserve(
        self,
        path: Path,
        size: int,
        ahead: bool,
        keep: frozenset[Path],
        on_wait: Callable[[], None] | None,
        patience: float,
    ) -> Path | None:
        """A temporary file of ``size`` bytes admitted under the limit, or None (read-ahead
        that does not fit now)."""
        deadline, pause = time.monotonic() + patience, 0.005
        while True:
            with self._cache_lock():
                room = self.limit if ahead else self.limit + self.slack
                if self._make_room(size, room, keep):
                    self._sizes[str(path)] = size  # the copy to come, for the next scan
                    return _reserved(path, size)
            if ahead:
                return None
            keep = frozenset()  # the batch needs more than fits: let its copies go too
            if on_wait is not None:
                on_wait()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no room in the shard cache `{self.root}` (limit {self.limit:,} bytes) "
                    f"for {size:,} bytes after {patience:g} s: every copy is being read. Raise "
                    f"`cache_limit`, or give each process its own `cache_dir`."
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _make_room(self, size: int, room: int, keep: frozenset[Path] = frozenset()) -> bool:
        """Evict unpinned copies (not in ``keep``), least recently used first, until ``size``
        more bytes fit within the limit; True if they fit within ``room``."""
        entries = [(entry, is_part, self._size(entry)) for entry, is_part in self._entries()]
        self._sizes = {entry.path: bytes_ for entry, _, bytes_ in entries if bytes_ is not None}
        used = sum(self._sizes.values())
        if used + size > self.limit:  # only eviction needs each copy's last use
            copies = []
            for entry, is_part, bytes_ in entries:
                stat = None if is_part or bytes_ is None else _stat(entry)
                if stat is not None:
                    copies.append((stat.st_mtime, stat.st_size, Path(entry.path)))
            for _, bytes_, copy in sorted(copies):
                if used + size <= self.limit:
                    break
                if copy not in keep and _evict(copy):
                    used -= bytes_
        return used + size <= room

    def _size(self, entry: os.DirEntry[str]) -> int | None:
        """The bytes of a copy or download, None if gone since the scan. A name fixes its
        content, so a size seen once is kept: admission then costs no ``stat`` per file
        under the lock every process and thread waits on."""
        known = self._sizes.get(entry.path)
        if known is None:
            stat = _stat(entry)
            known = None if stat is None else stat.st_size
        return known

    def _entries(self) -> Iterator[tuple[os.DirEntry[str], bool]]:
        """Copies and live downloads (``(entry, is_download)``); dead downloads removed."""
        with os.scandir(self.root) as datasets:
            folders = [d.path for d in datasets if d.is_dir(follow_symlinks=False)]
        for folder in folders:
            with contextlib.suppress(FileNotFoundError), os.scandir(folder) as files:
                for entry in files:
                    part = _PART.match(entry.name)
                    if part is None:
                        if _COPY.match(entry.name) and entry.is_file(follow_symlinks=False):
                            yield entry, False
                    elif process_alive(int(part["pid"])):
                        yield entry, True
                    else:
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)

    @contextlib.contextmanager
    def _cache_lock(self) -> Iterator[None]:
        with _locked(self.root / ".lock"):
            yield


def unpin(fd: int) -> None:
    """Close a descriptor from ``pin`` (its lock goes with it)."""
    with _HELD.lock:
        _HELD.fds.discard(fd)
        os.close(fd)


@contextlib.contextmanager
def _locked(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """An exclusive lock on ``path``; while another process holds it, ``on_wait`` is called
    between tries (a waiter must not keep copies pinned that the holder may need evicted)."""
    fd = _open_held(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    assert fd is not None
    try:
        if on_wait is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            _poll_lock(fd, on_wait)
        yield
    finally:
        unpin(fd)


def _poll_lock(fd: int, on_wait: Callable[[], None]) -> None:
    pause = 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            on_wait()
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def _open_held(path: Path, flags: int, mode: int = 0o644) -> int | None:
    """``os.open`` registered in ``_HELD`` in one step (no fork in between); None if the
    file is missing."""
    with _HELD.lock:
        try:
            fd = os.open(path, flags, mode)
        except FileNotFoundError:
            return None
        _HELD.fds.add(fd)
        return fd


def _reserved(path: Path, size: int) -> Path:
    part = path.parent / f".{path.name}.{os.getpid()}-{next(_counter)}.part"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        if size:
            try:
                os.posix_fallocate(fd, 0, size)  # the space is really taken, as counted
            except OSError as exc:
                if exc.errno in NO_ROOM:
                    raise
                os.ftruncate(fd, size)  # a file system that cannot reserve
    except OSError:
        os.close(fd)
        os.unlink(part)
        raise
    os.close(fd)
    return part


def _evict(copy: Path) -> bool:
    """Remove ``copy`` unless a reader holds it; True if removed."""
    fd = _open_held(copy, _OPEN)
    if fd is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(copy)
    except BlockingIOError:
        return False
    finally:
        unpin(fd)
    return True


def _stat(entry: os.DirEntry[str]) -> os.stat_result | None:
    try:
        return entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None


__all__ = ["MARKER", "CacheError", "CacheUse", "ShardCache", "cache_error", "unpin"]
