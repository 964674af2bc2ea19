"""Sources: what users have, turned into named records in a fixed order for ``pack``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from loadwise.errors import SourceError
from loadwise.sources.archive import ArchiveSource, is_archive
from loadwise.sources.arrays import ArraySource, IterableSource
from loadwise.sources.base import IndexedSource, Record, Source, declared_schema
from loadwise.sources.folder import LAYOUTS, ImageFolder, OmniglotFolder, folder_source
from loadwise.sources.media import (
    DecodeOptions,
    ImageBytes,
    ImageFile,
    ImageOptions,
    Media,
    image_size_hw,
)

__all__ = [
    "LAYOUTS",
    "ArchiveSource",
    "ArraySource",
    "DecodeOptions",
    "ImageBytes",
    "ImageFile",
    "ImageFolder",
    "ImageOptions",
    "IndexedSource",
    "IterableSource",
    "Media",
    "OmniglotFolder",
    "Record",
    "Source",
    "as_source",
    "declared_schema",
    "folder_source",
    "image_size_hw",
]


def as_source(obj: Any) -> Source:
    """A folder or archive path, a mapping of arrays, an iterable of dicts, or a ``Source``."""
    if isinstance(obj, str | Path):
        path = Path(obj).expanduser()
        return ArchiveSource(path) if is_archive(path) else folder_source(path)
    if isinstance(obj, Source):
        return obj
    if isinstance(obj, Mapping):
        return ArraySource(obj)
    if isinstance(obj, Iterable):
        return IterableSource(obj)
    raise SourceError(
        f"cannot pack a {type(obj).__name__}: pass a folder or archive path, a dict of arrays, "
        f"an iterable of dicts, or a loadwise.sources.Source."
    )
