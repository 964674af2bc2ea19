"""Image folders inside a ``.zip`` or ``.tar`` (``.tar.gz``, ...): packed without extracting.

Members are read straight from the archive, never written to disk, and the archive is
refused as a whole if any member could escape a folder when extracted (an absolute name,
``..``), is a link (symbolic or hard) or a device: such an archive is hostile or broken,
and other tools would extract it. Layout as for folders: ``class/image`` or
``alphabet/character/image``, optionally under one top folder.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import xxhash

from loadwise.errors import SourceError
from loadwise.sources.base import Record
from loadwise.sources.media import ImageBytes

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


class ArchiveSource:
    """Images in an archive, labelled by folder; items in sorted member order."""

    kind = "archive"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise SourceError(f"archive `{self.path}` does not exist.")
        names = _checked_names(self.path)
        self._files, self._labels, self._alphabets = _layout(self.path, names)

    @property
    def categories(self) -> Mapping[str, tuple[str, ...]]:
        return {"label": self._labels} | ({"alphabet": self._alphabets} if self._alphabets else {})

    def __len__(self) -> int:
        return len(self._files)

    def __iter__(self) -> Iterator[tuple[str, Record]]:
        with _member_reader(self.path) as read:
            for name, label, alphabet in self._files:
                record: Record = {"image": ImageBytes(read(name), f"{self.path}:{name}")}
                record["label"] = label
                if self._alphabets:
                    record["alphabet"] = alphabet
                record["path"] = name
                yield name, record

    def describe(self) -> dict[str, Any]:
        info = self.path.stat()
        key = f"{self.path}\0{info.st_size}\0{info.st_mtime_ns}".encode()
        return {
            "kind": self.kind,
            "root": str(self.path),
            "items": len(self._files),
            "fingerprint": xxhash.xxh3_64_hexdigest(key),
        }


def _checked_names(path: Path) -> list[str]:
    """Names of the regular files in the archive; the archive is refused if any member is
    unsafe (absolute, ``..``, link, device)."""
    try:
        members = _members(path)
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise SourceError(f"cannot read archive `{path}`: {exc}") from exc
    names = []
    for name, kind in members:
        pure = PurePosixPath(name.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
            raise SourceError(
                f"archive `{path}` member `{name}` has an absolute or `..` path that would "
                f"escape its folder when extracted; refusing the whole archive."
            )
        if kind in ("link", "device"):
            raise SourceError(
                f"archive `{path}` member `{name}` is a {kind}; loadwise refuses archives with "
                f"links or devices. Re-create it with plain files."
            )
        if kind == "file" and not any(part.startswith(".") for part in pure.parts):
            names.append(str(pure))
    return sorted(names)


def _members(path: Path) -> list[tuple[str, str]]:
    """``(name, kind)`` of each member; kind is file, dir, link or device."""
    if path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            out = []
            for info in archive.infolist():
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    out.append((info.filename, "link"))
                else:
                    out.append((info.filename, "dir" if info.is_dir() else "file"))
            return out
    with tarfile.open(path) as archive:
        out = []
        for member in archive.getmembers():
            if member.issym() or member.islnk():
                kind = "link"
            elif member.isdev():
                kind = "device"
            else:
                kind = "file" if member.isfile() else "dir"
            out.append((member.name, kind))
        return out


def _layout(
    path: Path, names: list[str]
) -> tuple[list[tuple[str, int, int]], tuple[str, ...], tuple[str, ...]]:
    """(member, label, alphabet) per image, labels and alphabets; one top folder is skipped."""
    if not names:
        raise SourceError(f"archive `{path}` holds no files.")
    parts = [PurePosixPath(n).parts for n in names]
    tops = {p[0] for p in parts}
    skip = 1 if len(tops) == 1 and all(len(p) >= 3 for p in parts) else 0
    depths = {len(p) - skip for p in parts}
    if depths not in ({2}, {3}):
        raise SourceError(
            f"archive `{path}` must hold `class/image` or `alphabet/character/image` files "
            f"(optionally under one top folder); found nesting depths {sorted(depths)}."
        )
    omniglot = depths == {3}
    keys = [p[skip:-1] for p in parts]
    labels = sorted({"/".join(k) for k in keys})
    alphabets = sorted({k[0] for k in keys}) if omniglot else []
    label_of = {name: i for i, name in enumerate(labels)}
    alphabet_of = {name: i for i, name in enumerate(alphabets)}
    files = [
        (name, label_of["/".join(k)], alphabet_of[k[0]] if omniglot else 0)
        for name, k in zip(names, keys, strict=True)
    ]
    return files, tuple(labels), tuple(alphabets)


@contextmanager
def _member_reader(path: Path) -> Iterator[Callable[[str], bytes]]:
    """A function reading a member's bytes by name, valid inside the ``with``."""
    if path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as zipped:
            yield zipped.read
        return
    with tarfile.open(path) as tarred:

        def read(name: str) -> bytes:
            handle = tarred.extractfile(name)
            if handle is None:
                raise SourceError(f"archive `{path}` member `{name}` is not a regular file.")
            with handle:
                return handle.read()

        yield read
