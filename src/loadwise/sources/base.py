"""What every source gives ``pack``: named records in a fixed order, and how to describe them.

A record is a dict of field values: numpy arrays, numbers, ``bytes``, ``str``, or an
``ImageFile``/``ImageBytes`` that ``pack`` decodes (in worker processes when asked).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

Record = dict[str, Any]


@dataclass(frozen=True)
class ImageFile:
    """An image on disk, read and decoded by ``pack`` rather than by the source."""

    path: Path


@dataclass(frozen=True)
class ImageBytes:
    """An image's encoded bytes (from an archive, a download), decoded by ``pack``."""

    data: bytes
    name: str


@runtime_checkable
class Source(Protocol):
    """Anything ``pack`` can read: a sized, ordered iterable of ``(item_name, record)``."""

    @property
    def categories(self) -> Mapping[str, tuple[str, ...]]:
        """Names of the values of integer fields, e.g. ``{"label": ("cat", "dog")}``."""
        ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[tuple[str, Record]]: ...

    def describe(self) -> dict[str, Any]:
        """What this source is, for the manifest: kind, location, fingerprint."""
        ...


@runtime_checkable
class IndexedSource(Source, Protocol):
    """A source that yields any range of its items without reading those before it.

    ``pack``'s forked workers each read the items of their own range, so only index ranges
    (not records) travel to them.
    """

    def records(self, start: int, stop: int) -> Iterator[tuple[str, Record]]:
        """Items ``start`` to ``stop`` (exclusive), exactly as iterating would yield them."""
        ...
