"""Where a packed dataset's bytes live: the interface every store implements, and one open
shard file.

Readers never build paths or open files themselves: they ask the store for the manifest's
bytes and for each shard as a ``ShardFile``, an open local file checked against the size
the manifest gives. A remote store (object storage) is a layer in front: it brings a shard
into a local cache, verified, and then hands out the same ``ShardFile``; readers never
know where the bytes came from.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable
from typing import Protocol

import numpy as np

from loadwise.errors import IntegrityError

#: The manifest's file name; its presence means the dataset is complete (written last).
MANIFEST_NAME = "manifest.json"


class ShardStore(Protocol):
    """A packed dataset's files: its manifest and its shards."""

    #: Where the dataset is, as messages should name it (a folder, a URL).
    location: str

    def read_manifest(self) -> bytes:
        """The manifest's bytes; ``FormatError`` saying what to do if there is none."""
        ...

    def check(self, name: str, size: int) -> None:
        """``IntegrityError`` if shard ``name`` is missing or not ``size`` bytes (the
        manifest's figure)."""
        ...

    def open(self, name: str, size: int) -> ShardFile:
        """Shard ``name`` as an open file, checked through that file to be ``size`` bytes."""
        ...


class ShardFile:
    """One open shard file: reads at offsets, a read-only mapping of the whole file.

    Every read checks it got what it asked for: a file that shrank after it was opened is
    an ``IntegrityError`` naming the shard, never short data.
    """

    def __init__(self, fd: int, name: str, size: int, location: str) -> None:
        self._fd: int | None = fd
        self.name, self.size, self.location = name, size, location

    def fileno(self) -> int:
        if self._fd is None:
            raise IntegrityError(f"shard `{self.name}` in `{self.location}` is closed.")
        return self._fd

    def read(self, length: int, offset: int) -> bytes:
        data = os.pread(self.fileno(), length, offset)
        if len(data) != length:
            raise self._ended_early()
        return data

    def read_into(self, buffer: memoryview, offset: int) -> None:
        """Fill ``buffer`` with the bytes from ``offset`` on."""
        done, fd = 0, self.fileno()
        while done < len(buffer):
            got = os.preadv(fd, [buffer[done:]], offset + done)
            if got <= 0:
                raise self._ended_early()
            done += got

    def read_spans(self, buffer: memoryview, spans: Iterable[tuple[int, int]]) -> None:
        """Fill ``buffer`` with the ``(offset, length)`` spans of the file, one after another
        (the values of a batch's samples, read into one buffer)."""
        fd, at = self.fileno(), 0
        for offset, length in spans:
            if os.preadv(fd, [buffer[at : at + length]], offset) != length:
                self.read_into(buffer[at : at + length], offset)  # a short read: retry or fail
            at += length

    def read_rows(
        self, into: np.ndarray, at: np.ndarray, base: int, size: int, local: np.ndarray
    ) -> None:
        """Rows ``local`` of a table of ``size``-byte rows starting at ``base`` into rows
        ``at`` of ``into`` (uint8, one row of ``size`` bytes each): one read per row."""
        for j, start in zip(at.tolist(), (base + local * size).tolist(), strict=True):
            self.read_into(memoryview(into[j]), start)

    def map(self) -> mmap.mmap | None:
        """The whole file mapped read-only (None for an empty file)."""
        if self.size == 0:
            return None
        return mmap.mmap(self.fileno(), 0, access=mmap.ACCESS_READ)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ShardFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ended_early(self) -> IntegrityError:
        return IntegrityError(
            f"shard `{self.name}` in `{self.location}` ended early: it changed since it was "
            f"opened; re-run `loadwise pack`, or `loadwise verify {self.location}`."
        )
