"""What every source gives ``pack``: named records in a fixed order, and how to describe them.

A record is a dict of field values: numpy arrays, numbers, ``bytes``, ``str``, or ``Media``
(``media.py``: an image file or image bytes) that ``pack`` decodes, in worker processes when
asked. A source may declare some fields' kinds (``schema``) where a sample's value cannot
tell (a variable-length array is a ``RaggedField``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from loadwise.format.fields import FieldSpec

Record = dict[str, Any]


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


def declared_schema(source: Source) -> tuple[FieldSpec, ...]:
    """The fields a source declares (its optional ``schema`` attribute), else none."""
    return tuple(getattr(source, "schema", ()))


@runtime_checkable
class IndexedSource(Source, Protocol):
    """A source that yields any range of its items without reading those before it.

    ``pack``'s forked workers each read the items of their own range, so only index ranges
    (not records) travel to them.
    """

    def records(self, start: int, stop: int) -> Iterator[tuple[str, Record]]:
        """Items ``start`` to ``stop`` (exclusive), exactly as iterating would yield them."""
        ...
