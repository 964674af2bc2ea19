"""Shards as files in a local folder."""

from __future__ import annotations

import os
from pathlib import Path

from loadwise.errors import FormatError, IntegrityError
from loadwise.stores.base import MANIFEST_NAME, ShardFile

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


class LocalStore:
    """A packed dataset in the folder ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.location = str(self.root)

    def read_manifest(self) -> bytes:
        path = self.root / MANIFEST_NAME
        if not self.root.is_dir():
            raise FormatError(
                f"`{self.root}` is not a folder: pass the folder `loadwise pack` wrote."
            )
        if not path.is_file():
            raise FormatError(
                f"`{self.root}` has no {MANIFEST_NAME}: it is not a loadwise dataset, or its "
                f"`pack` did not finish. Run `loadwise pack SOURCE {self.root}`."
            )
        return path.read_bytes()

    def check(self, name: str, size: int) -> None:
        try:
            actual = (self.root / name).stat().st_size
        except FileNotFoundError:
            raise self._missing(name) from None
        self._check_size(name, size, actual)

    def open(self, name: str, size: int) -> ShardFile:
        try:
            fd = os.open(self.root / name, _OPEN_FLAGS)
        except FileNotFoundError:
            raise self._missing(name) from None
        try:
            self._check_size(name, size, os.fstat(fd).st_size)
        except BaseException:
            os.close(fd)
            raise
        return ShardFile(fd, name, size, self.location)

    def __repr__(self) -> str:
        return f"LocalStore({self.location!r})"

    def _missing(self, name: str) -> IntegrityError:
        return IntegrityError(
            f"shard `{name}` is missing from `{self.root}`: re-run `loadwise pack`."
        )

    def _check_size(self, name: str, size: int, actual: int) -> None:
        if actual != size:
            what = "truncated" if actual < size else "longer than written"
            raise IntegrityError(
                f"shard `{name}` is {actual:,} bytes, the manifest says {size:,}: the file is "
                f"{what}; re-run `loadwise pack`, or `loadwise verify {self.root}`."
            )
