"""Image folder trees: one class per folder, or the Omniglot ``alphabet/character/*.png`` tree.

Files are listed in sorted order, so labels and sample order are the same on every machine.
Hidden files and folders (names starting with ``.``) are ignored; every other file is offered
to ``pack`` as an image, so an unreadable one is raised or skipped by its ``on_error`` policy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import xxhash

from loadwise.errors import ConfigError, SourceError
from loadwise.sources.base import Record
from loadwise.sources.media import ImageFile

LAYOUTS = ("auto", "classes", "omniglot")


class ImageFolder:
    """``root/<class>/<image>``: label = index of the class folder in sorted order."""

    kind = "image-folder"

    def __init__(self, root: str | Path) -> None:
        self.root = _existing_dir(root)
        classes = _subdirs(self.root)
        self._files = [(f, i) for i, c in enumerate(classes) for f in _files(c)]
        self.categories = {"label": tuple(c.name for c in classes)}
        if not self._files:
            raise SourceError(
                f"source folder `{self.root}` holds no image files in the layout "
                f"`<class>/<image>` (found {len(classes)} class folders)."
            )

    def __len__(self) -> int:
        return len(self._files)

    def __iter__(self) -> Iterator[tuple[str, Record]]:
        return self.records(0, len(self._files))

    def records(self, start: int, stop: int) -> Iterator[tuple[str, Record]]:
        for path, label in self._files[start:stop]:
            item = _relative(path, self.root)
            yield item, {"image": ImageFile(Path(path)), "label": label, "path": item}

    def describe(self) -> dict[str, Any]:
        return _describe(self.kind, self.root, [f for f, _ in self._files])


class OmniglotFolder:
    """``root/<alphabet>/<character>/<drawing>``: label = character, alphabet kept as a field."""

    kind = "omniglot-folder"

    def __init__(self, root: str | Path) -> None:
        self.root = _existing_dir(root)
        alphabets = _subdirs(self.root)
        characters = [(a, c) for a in alphabets for c in _nonempty_subdirs(a)]
        alphabet_of = {a: i for i, a in enumerate(alphabets)}
        self._files = [
            (f, label, alphabet_of[a]) for label, (a, c) in enumerate(characters) for f in _files(c)
        ]
        self.categories = {
            "label": tuple(f"{a.name}/{c.name}" for a, c in characters),
            "alphabet": tuple(a.name for a in alphabets),
        }
        if not self._files:
            raise SourceError(
                f"source folder `{self.root}` holds no drawings in the layout "
                f"`<alphabet>/<character>/<drawing>` (found {len(alphabets)} alphabet folders)."
            )

    def __len__(self) -> int:
        return len(self._files)

    def __iter__(self) -> Iterator[tuple[str, Record]]:
        return self.records(0, len(self._files))

    def records(self, start: int, stop: int) -> Iterator[tuple[str, Record]]:
        for path, label, alphabet in self._files[start:stop]:
            item = _relative(path, self.root)
            image = ImageFile(Path(path))
            record = {"image": image, "label": label, "alphabet": alphabet, "path": item}
            yield item, record

    def describe(self) -> dict[str, Any]:
        return _describe(self.kind, self.root, [f for f, _, _ in self._files])


def folder_source(root: str | Path, layout: str = "auto") -> ImageFolder | OmniglotFolder:
    """Open ``root`` in ``layout``; ``auto`` picks Omniglot when its folders hold folders."""
    if layout not in LAYOUTS:
        raise ConfigError(f"`layout` must be one of {', '.join(LAYOUTS)}. Found: {layout!r}.")
    if layout == "auto":
        nested = any(_subdirs(folder) for folder in _subdirs(_existing_dir(root)))
        layout = "omniglot" if nested else "classes"
    return OmniglotFolder(root) if layout == "omniglot" else ImageFolder(root)


def _existing_dir(root: str | Path) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise SourceError(f"source folder `{path}` {what}: pass the root of an image folder tree.")
    return path.resolve()


def _subdirs(folder: Path) -> list[Path]:
    return _listed(folder, os.DirEntry.is_dir)


def _nonempty_subdirs(alphabet: Path) -> list[Path]:
    characters = _subdirs(alphabet)
    if not characters:
        raise SourceError(
            f"alphabet folder `{alphabet}` has no character folders: the Omniglot layout is "
            f"`<alphabet>/<character>/<drawing>.png`. Remove it or add its characters."
        )
    return characters


def _files(folder: Path) -> list[str]:
    """Paths of the files in ``folder`` as strings: a ``Path`` each cost ~5 us, most of the
    listing of 18,000 drawings; ``records`` makes them (in ``pack``'s workers, when asked)."""
    return [os.path.join(folder, name) for name in _names(folder, os.DirEntry.is_file)]


def _listed(folder: Path, keep: Callable[[os.DirEntry[str]], bool]) -> list[Path]:
    return [folder / name for name in _names(folder, keep)]


def _names(folder: Path, keep: Callable[[os.DirEntry[str]], bool]) -> list[str]:
    """Visible entries of ``folder`` that ``keep`` accepts, sorted by name (``scandir``
    knows each entry's type without a ``stat`` per file)."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and keep(e))


def _relative(path: str, root: Path) -> str:
    """``str(Path(path).relative_to(root))`` for a file listed under ``root``, without
    pathlib's parsing (it cost ~40 us per file, most of ``pack``'s serial time on small
    images)."""
    return path[len(str(root).rstrip(os.sep)) + 1 :]


def _describe(kind: str, root: Path, files: list[str]) -> dict[str, Any]:
    """Fingerprint = names, sizes and modification times: cheap, and changes when files do.
    (One hash over all the lines: the same digest as one update per file, in less time.)"""
    lines = []
    for path in files:
        stat = os.stat(path)
        lines.append(f"{_relative(path, root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n")
    fingerprint = xxhash.xxh3_64_hexdigest("".join(lines).encode())
    return {"kind": kind, "root": str(root), "items": len(files), "fingerprint": fingerprint}
