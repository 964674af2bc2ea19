"""Image folders inside a ``.zip`` or ``.tar`` (``.tar.gz``, ...): packed without extracting.

Members are read straight from the archive, never written to disk, and the archive is
refused as a whole if any member could escape a folder when extracted (an absolute name,
``..``), is a link (symbolic or hard) or a device, or if two members have the same name
once written the ordinary way (``./a/1.png`` and ``a//1.png`` are both ``a/1.png``): such an
archive is hostile or broken, and other tools would extract it. Layout as for folders:
``class/image`` or ``alphabet/character/image``, optionally under one top folder.

Memory and time stay bounded whatever the archive holds: a member is read only up to
``max_member_bytes`` (its declared size is checked first), and one that would expand more
than ``max_ratio`` times its compressed size is not decompressed at all. Such members, and
damaged (bad CRC) or encrypted ones, reach ``pack`` as unreadable items, so
``on_error="skip"`` leaves them out and records why. A compressed tar that expands beyond
``max_ratio`` times its size as a whole is refused: its later members cannot be reached
without decompressing the bomb.
"""

from __future__ import annotations

import lzma
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import xxhash

from loadwise.errors import SourceError
from loadwise.sources.base import Record
from loadwise.sources.media import DecodeOptions, ImageBytes, Media

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
#: A member larger than this (declared, or as read) is not read: no image file is this big.
MAX_MEMBER_BYTES = 256 << 20
#: A member (zip) or a compressed tar expanding more than this many times is a bomb.
MAX_RATIO = 100
#: Members up to this size are never bombs, whatever their ratio (a blank bitmap is 1000x).
_RATIO_FLOOR = 1 << 20
_READ_ERRORS = (
    OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError,
    NotImplementedError, RuntimeError, ValueError,
)  # fmt: skip


_LIST_ERRORS = (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError)


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass(frozen=True)
class Unreadable(Media):
    """An archive member ``pack`` cannot take (a bomb, damaged, encrypted): preparing it
    fails, so ``on_error`` decides (``skip`` records the reason in the manifest)."""

    name: str
    reason: str

    def prepare(self, decode: DecodeOptions) -> Any:
        raise SourceError(f"archive member `{self.name}` {self.reason}")


@dataclass(frozen=True)
class _Member:
    """One regular file of the archive: its checked name, and what reading it needs."""

    name: str
    info: Any  # zipfile.ZipInfo or tarfile.TarInfo
    problem: str | None  # why it is not read at all (too big, a bomb, encrypted)


class ArchiveSource:
    """Images in an archive, labelled by folder; items in sorted member order."""

    kind = "archive"

    def __init__(
        self,
        path: str | Path,
        *,
        max_member_bytes: int = MAX_MEMBER_BYTES,
        max_ratio: float = MAX_RATIO,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise SourceError(f"archive `{self.path}` does not exist.")
        self.max_member_bytes, self.max_ratio = max_member_bytes, max_ratio
        members = _checked_members(self.path, max_member_bytes, max_ratio)
        self._members = {m.name: m for m in members}
        self._files, self._labels, self._alphabets = _layout(self.path, sorted(self._members))

    @property
    def categories(self) -> Mapping[str, tuple[str, ...]]:
        return {"label": self._labels} | ({"alphabet": self._alphabets} if self._alphabets else {})

    def __len__(self) -> int:
        return len(self._files)

    def __iter__(self) -> Iterator[tuple[str, Record]]:
        with _member_reader(self.path, self.max_member_bytes) as read:
            for name, label, alphabet in self._files:
                member = self._members[name]
                image: Media = Unreadable(name, member.problem) if member.problem else read(member)
                record: Record = {"image": image, "label": label}
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


def _checked_members(path: Path, max_bytes: int, max_ratio: float) -> list[_Member]:
    """The archive's regular files (hidden ones left out) under their checked names; the
    archive is refused if any member is unsafe or two share a name."""
    try:
        if _is_zip(path):
            listed = _zip_members(path, max_bytes, max_ratio)
        else:
            listed = _tar_members(path, max_bytes, max_ratio)
    except _LIST_ERRORS as exc:
        raise SourceError(f"cannot read archive `{path}`: {exc}") from exc
    members: dict[str, _Member] = {}
    for raw, kind, info, problem in listed:
        name = _checked_name(path, raw, kind)
        if kind != "file" or any(part.startswith(".") for part in PurePosixPath(name).parts):
            continue
        if name in members:
            raise SourceError(
                f"archive `{path}` has two members named `{name}` (`{_raw(members[name])}` and "
                f"`{raw}`); which one is meant is ambiguous, so the archive is refused. "
                f"Re-create it with each file once."
            )
        members[name] = _Member(name, info, problem)
    return list(members.values())


def _checked_name(path: Path, raw: str, kind: str) -> str:
    """A member's name as extracting it would write it (``./a//1.png`` -> ``a/1.png``);
    refused if it is absolute or climbs out, or the member is a link or device."""
    pure = PurePosixPath(raw.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise SourceError(
            f"archive `{path}` member `{raw}` has an absolute or `..` path that would "
            f"escape its folder when extracted; refusing the whole archive."
        )
    if kind in ("link", "device"):
        raise SourceError(
            f"archive `{path}` member `{raw}` is a {kind}; loadwise refuses archives with "
            f"links or devices. Re-create it with plain files."
        )
    return str(pure)


Listed = list[tuple[str, str, Any, "str | None"]]  # raw name, kind, info, problem


def _zip_members(path: Path, max_bytes: int, max_ratio: float) -> Listed:
    """``(name, kind, info, problem)`` of each member, from the central directory alone."""
    with zipfile.ZipFile(path) as archive:
        out: Listed = []
        for info in archive.infolist():
            if stat.S_ISLNK(info.external_attr >> 16):
                out.append((info.filename, "link", info, None))
                continue
            kind = "dir" if info.is_dir() else "file"
            out.append((info.filename, kind, info, _zip_problem(info, max_bytes, max_ratio)))
        return out


def _zip_problem(info: zipfile.ZipInfo, max_bytes: int, max_ratio: float) -> str | None:
    if info.flag_bits & 0x1:
        return "is encrypted; loadwise reads no passwords: re-create the archive without one."
    if info.file_size > max_bytes:
        return _too_big(info.file_size, max_bytes)
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > _RATIO_FLOOR and ratio > max_ratio:
        return (
            f"would expand {ratio:,.0f}x ({info.compress_size:,} -> {info.file_size:,} bytes), "
            f"over `max_ratio={max_ratio:g}`: a decompression bomb, not read."
        )
    return None


def _tar_members(path: Path, max_bytes: int, max_ratio: float) -> Listed:
    """``(name, kind, info, problem)`` of each member, read header by header; a compressed
    tar is refused as soon as a header says it expands beyond ``max_ratio`` its size."""
    limit = max(max_ratio * path.stat().st_size, _RATIO_FLOOR)
    compressed = not path.name.lower().endswith(".tar")
    out: Listed = []
    with tarfile.open(path) as archive:
        for member in archive:
            if compressed and member.offset_data + member.size > limit:
                raise SourceError(
                    f"archive `{path}` expands beyond {max_ratio:g}x its size at member "
                    f"`{member.name}` ({member.size:,} bytes): a decompression bomb; refusing "
                    f"it without decompressing further. If it is genuine, pass a larger "
                    f"`max_ratio` to ArchiveSource."
                )
            if member.issym() or member.islnk():
                kind = "link"
            elif member.isdev():
                kind = "device"
            else:
                kind = "file" if member.isfile() else "dir"
            problem = _too_big(member.size, max_bytes) if member.size > max_bytes else None
            out.append((member.name, kind, member, problem))
    return out


def _too_big(size: int, max_bytes: int) -> str:
    return (
        f"is {size:,} bytes, over `max_member_bytes={max_bytes:,}`: not read (pass a larger "
        f"limit to ArchiveSource if it is a genuine image)."
    )


def _raw(member: _Member) -> str:
    return str(getattr(member.info, "filename", None) or getattr(member.info, "name", ""))


def _is_zip(path: Path) -> bool:
    return path.name.lower().endswith(".zip")


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
def _member_reader(path: Path, max_bytes: int) -> Iterator[Callable[[_Member], Media]]:
    """A function reading a member (at most ``max_bytes``, never more), valid inside the
    ``with``: its bytes as ``ImageBytes``, or ``Unreadable`` saying why not."""
    with _opened(path) as archive:

        def read(member: _Member) -> Media:
            try:
                with _open_member(archive, member) as handle:
                    data = handle.read(max_bytes + 1)
            except _READ_ERRORS as exc:
                return Unreadable(member.name, f"cannot be read: {exc}")
            if len(data) > max_bytes:
                return Unreadable(member.name, _too_big(len(data), max_bytes))
            return ImageBytes(data, f"{path}:{member.name}")

        yield read


def _open_member(archive: zipfile.ZipFile | tarfile.TarFile, member: _Member) -> IO[bytes]:
    if isinstance(archive, zipfile.ZipFile):
        return archive.open(member.info)
    handle = archive.extractfile(member.info)
    if handle is None:
        raise tarfile.TarError("not a regular file")
    return handle


def _opened(path: Path) -> zipfile.ZipFile | tarfile.TarFile:
    if _is_zip(path):
        return zipfile.ZipFile(path)
    return tarfile.open(path)
