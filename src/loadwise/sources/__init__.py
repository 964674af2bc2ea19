"""Sources: what users have, turned into named records in a fixed order for ``pack``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from loadwise.errors import SourceError
from loadwise.sources.arrays import ArraySource, IterableSource
from loadwise.sources.base import ImageFile, Record, Source
from loadwise.sources.folder import LAYOUTS, ImageFolder, OmniglotFolder, folder_source

__all__ = [
    "LAYOUTS",
    "ArraySource",
    "ImageFile",
    "ImageFolder",
    "IterableSource",
    "OmniglotFolder",
    "Record",
    "Source",
    "as_source",
    "folder_source",
]


def as_source(obj: Any) -> Source:
    """A folder path, a mapping of arrays, an iterable of dicts, or a ``Source`` as it is."""
    if isinstance(obj, str | Path):
        return folder_source(obj)
    if isinstance(obj, Source):
        return obj
    if isinstance(obj, Mapping):
        return ArraySource(obj)
    if isinstance(obj, Iterable):
        return IterableSource(obj)
    raise SourceError(
        f"cannot pack a {type(obj).__name__}: pass a folder path, a dict of arrays, "
        f"an iterable of dicts, or a loadwise.sources.Source."
    )
