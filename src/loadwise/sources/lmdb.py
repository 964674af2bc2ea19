"""LMDB databases (the ``lmdb`` extra): one sample per key, read in place or packed.

Values are what the caller names (``values=``): encoded images, ``.npy`` bytes (loaded with
``allow_pickle=False``), raw bytes or UTF-8 text; ``auto`` tells them from the first value.
A value that is a Python pickle (protocol 2 to 5, what ``pickle.dumps`` writes) is refused
and named: loadwise never unpickles, since unpickling runs whatever the data says.

The environment is opened in each process on first use (an environment must not be used
after ``fork``), read-only with ``lock=False`` (no reader table, so the default limit of
126 readers, which DataLoader workers times threads can exceed, does not apply; nobody may
write to the database meanwhile) and ``readahead=False`` (random reads of a file larger
than RAM would otherwise fill the page cache with neighbours never asked for).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from loadwise.errors import IntegrityError, SourceError
from loadwise.format.codecs import decode_image
from loadwise.sources.base import Record
from loadwise.sources.handles import FileSignature, OpenedFile, PerProcess, import_extra
from loadwise.sources.media import DecodeOptions, Media, prepare_image

VALUE_KINDS = ("auto", "image", "npy", "bytes", "text")
NPY_MAGIC = b"\x93NUMPY"
IMAGE_MAGICS = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


def lmdb_module() -> Any:
    return import_extra("lmdb", "lmdb")


def is_lmdb(path: Path) -> bool:
    """An LMDB environment: a folder holding ``data.mdb``, or a ``.mdb``/``.lmdb`` file."""
    if path.is_dir():
        return (path / "data.mdb").is_file()
    return path.is_file() and path.suffix in (".mdb", ".lmdb")


def is_pickle(data: bytes) -> bool:
    """Pickle protocols 2-5 start with PROTO (0x80) and the protocol, and end with STOP."""
    return len(data) >= 3 and data[0] == 0x80 and 2 <= data[1] <= 5 and data[-1:] == b"."


def sniff(data: bytes) -> str:
    """The kind of a value: ``npy``, ``image``, ``text`` (valid UTF-8) or ``bytes``."""
    if data.startswith(NPY_MAGIC):
        return "npy"
    if data.startswith(IMAGE_MAGICS) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes"
    return "text"


class LMDBFile(OpenedFile):
    """An LMDB environment's keys (listed once, in key order) and values, opened per process."""

    def __init__(self, path: str | Path, db: str | None = None) -> None:
        self.path = Path(path).expanduser().resolve()
        lmdb_module()
        if not is_lmdb(self.path):
            raise SourceError(
                f"`{self.path}` is not an LMDB database: pass its folder (holding `data.mdb`) "
                f"or a `.mdb`/`.lmdb` file."
            )
        self.db = db
        data = self.path / "data.mdb" if self.path.is_dir() else self.path
        self.signature = FileSignature.of(data)
        self._handle: PerProcess[Any] = PerProcess(self._open, _release)
        try:
            self._blob, self._offsets = self._list_keys()
        finally:
            self._handle.close()

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def key(self, i: int) -> bytes:
        return self._blob[int(self._offsets[i]) : int(self._offsets[i + 1])]

    def name(self, i: int) -> str:
        """Key ``i`` as text (bytes that are not UTF-8 shown as escapes)."""
        return self.key(i).decode("utf-8", "backslashreplace")

    def values(self, rows: np.ndarray) -> list[bytes]:
        """The values of sorted ``rows``, read in key order in one read transaction."""
        env = self._handle.get()
        with env.begin(db=self._database(env), buffers=False) as txn:
            found = [txn.get(self.key(i)) for i in rows.tolist()]
        missing = [int(i) for i, v in zip(rows.tolist(), found, strict=True) if v is None]
        if missing:
            self.signature.check()
            raise IntegrityError(
                f"key `{self.name(missing[0])}` of `{self.path}` has no value any more: the "
                f"database changed while in use. Open it again."
            )
        return found

    def stamp(self) -> str:
        keys = xxhash.xxh3_64_hexdigest(self._blob)
        return f"{keys}:{self.signature.size}:{self.signature.mtime_ns}"

    def environment(self) -> Any:
        """This process's environment (opened on first use)."""
        return self._handle.get()

    def _open(self) -> Any:
        self.signature.check()
        return _acquire(self.path)

    def _database(self, env: Any) -> Any:
        return None if self.db is None else env.open_db(self.db.encode(), create=False)

    def _list_keys(self) -> tuple[bytes, np.ndarray]:
        """Every key end to end in one buffer, with int64 offsets: compact, shared by forks."""
        env = self._handle.get()
        try:
            with env.begin(db=self._database(env), buffers=False) as txn:
                keys = list(txn.cursor().iternext(keys=True, values=False))
        except lmdb_module().Error as exc:
            raise SourceError(f"cannot list the keys of `{self.path}`: {exc}") from exc
        offsets = np.zeros(len(keys) + 1, np.int64)
        np.cumsum([len(k) for k in keys], out=offsets[1:])
        return b"".join(keys), offsets


#: This process's open environments by path, with how many ``LMDBFile``\ s use each: LMDB
#: refuses to open one environment twice in a process (a source and a reader of one file).
_OPEN: dict[str, list[Any]] = {}
_OPEN_PID = [os.getpid()]


def _acquire(path: Path) -> Any:
    """This process's environment of ``path``, opened read-only on first use."""
    if _OPEN_PID[0] != os.getpid():  # forked: the parent's environments are not ours
        for env, _ in _OPEN.values():
            with contextlib.suppress(Exception):
                env.close()  # the child's copy only
        _OPEN.clear()
        _OPEN_PID[0] = os.getpid()
    entry = _OPEN.get(str(path))
    if entry is None:
        env = lmdb_module().open(
            str(path), subdir=path.is_dir(), readonly=True, lock=False, readahead=False,
            max_dbs=8,
        )  # fmt: skip
        entry = _OPEN[str(path)] = [env, 0]
    entry[1] += 1
    return entry[0]


def _release(env: Any) -> None:
    """One user fewer; the last one closes the environment."""
    for path, entry in list(_OPEN.items()):
        if entry[0] is env:
            entry[1] -= 1
            if entry[1] <= 0:
                del _OPEN[path]
                env.close()
            return
    env.close()  # inherited from a parent process: closed here only


def decode_value(data: bytes, kind: str, key: str, where: Path) -> Any:
    """A stored value as ``kind`` says (an image decoded ``(C, H, W)`` uint8, an array, bytes
    or str); pickles refused, naming the key."""
    refuse_pickle(data, key, where)
    if kind == "npy":
        return load_npy(data, key, where)
    if kind == "image":
        return decode_image(data, name=f"{where}:{key}")
    if kind == "text":
        return decode_text(data, key, where)
    return data


def refuse_pickle(data: bytes, key: str, where: Path) -> None:
    if is_pickle(data):
        raise SourceError(
            f"the value of key `{key}` in `{where}` is a Python pickle: loadwise never "
            f"unpickles (unpickling runs any code the data holds). Store .npy bytes "
            f"(np.save), encoded images, raw bytes or UTF-8 text instead."
        )


def load_npy(data: bytes, key: str, where: Path) -> np.ndarray:
    if not data.startswith(NPY_MAGIC):
        raise SourceError(f"the value of key `{key}` in `{where}` is not .npy bytes (np.save).")
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise SourceError(
            f"the .npy value of key `{key}` in `{where}` cannot be loaded without pickle "
            f"({exc}): store numeric arrays."
        ) from exc


def decode_text(data: bytes, key: str, where: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"the value of key `{key}` in `{where}` is not UTF-8 text ({exc}); read it as "
            f"values='bytes'."
        ) from exc


def value_kind(file: LMDBFile, values: str) -> str:
    """``values`` checked, or for ``auto`` the kind of the first value."""
    if values not in VALUE_KINDS:
        raise SourceError(f"`values` must be one of {', '.join(VALUE_KINDS)}. Found: {values!r}.")
    if values != "auto" or not len(file):
        return "bytes" if values == "auto" else values
    first = file.values(np.zeros(1, np.int64))[0]
    refuse_pickle(first, file.name(0), file.path)
    return sniff(first)


class LMDBSource:
    """One sample per key, in key order: ``{field: value, "key": key}``, the value as
    ``values`` says, decoded by ``pack`` (images as ``DecodeOptions`` asks)."""

    kind = "lmdb"

    def __init__(
        self, path: str | Path, values: str = "auto", *, field: str = "value", db: str | None = None
    ) -> None:
        self.file = LMDBFile(path, db)
        try:
            self.values = value_kind(self.file, values)
        finally:
            self.file.close()
        self.field = field
        self.categories: dict[str, tuple[str, ...]] = {}
        if not len(self.file):
            raise SourceError(f"LMDB database `{self.file.path}` holds no keys.")

    def __len__(self) -> int:
        return len(self.file)

    def __iter__(self) -> Iterator[tuple[str, Record]]:
        return self.records(0, len(self))

    def records(self, start: int, stop: int) -> Iterator[tuple[str, Record]]:
        for low in range(start, min(stop, len(self)), 256):
            rows = np.arange(low, min(low + 256, stop, len(self)))
            for i, data in zip(rows.tolist(), self.file.values(rows), strict=True):
                key = self.file.name(i)
                yield key, {self.field: self._value(data, key), "key": key}

    def describe(self) -> dict[str, Any]:
        stamp = f"{self.file.stamp()}:{self.values}:{self.field}:{self.file.db}"
        return {
            "kind": self.kind,
            "root": str(self.file.path),
            "items": len(self),
            "values": self.values,
            "fingerprint": xxhash.xxh3_64_hexdigest(stamp.encode()),
        }

    def close(self) -> None:
        self.file.close()

    def _value(self, data: bytes, key: str) -> LMDBValue:
        return LMDBValue(data, self.values, key, str(self.file.path))


@dataclass(frozen=True)
class LMDBValue(Media):
    """A stored value that ``pack`` decodes (in its workers when asked), so a bad one is
    raised or skipped by ``on_error`` like an unreadable image file."""

    data: bytes
    kind: str
    key: str
    where: str

    def prepare(self, decode: DecodeOptions) -> Any:
        refuse_pickle(self.data, self.key, Path(self.where))
        if self.kind == "image":
            return prepare_image(self.data, f"{self.where}:{self.key}", decode.image)
        return decode_value(self.data, self.kind, self.key, Path(self.where))
