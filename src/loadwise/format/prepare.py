"""Turn source records into the values shards store: images read, decoded or kept encoded.

Runs in ``pack``'s worker processes; a record that cannot be prepared comes back as a
``Failed`` naming the item, so the parent applies the ``on_error`` policy in source order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loadwise.errors import ConfigError, SourceError
from loadwise.format.codecs import decode_image
from loadwise.format.spec import FieldSpec
from loadwise.sources.base import ImageBytes, ImageFile, Record


@dataclass(frozen=True)
class PrepareOptions:
    """How ``pack`` stores images: decoded to a fixed size and mode, or as their file bytes."""

    image_size: tuple[int, int] | None = None
    image_mode: str | None = None
    encoded: bool = False


@dataclass(frozen=True)
class Failed:
    """A record that could not be prepared, and why."""

    item: str
    reason: str


Prepared = tuple[str, "dict[str, Any] | Failed"]


def image_size_hw(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``image_size`` as (height, width); an int means a square, ``None`` keeps files' sizes."""
    if image_size is None:
        return None
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(d, int) and d >= 1 for d in size):
        raise ConfigError(
            f"`image_size` must be an int or (height, width) of ints >= 1. Found: {image_size!r}."
        )
    return int(size[0]), int(size[1])


def prepare_chunk(options: PrepareOptions, chunk: Sequence[tuple[str, Record]]) -> list[Prepared]:
    """Prepare a chunk of records, keeping their order; failures are returned, not raised."""
    out: list[Prepared] = []
    for item, record in chunk:
        try:
            out.append((item, prepare_record(record, options)))
        except SourceError as exc:
            out.append((item, Failed(item, str(exc))))
    return out


def prepare_record(record: Record, options: PrepareOptions) -> dict[str, Any]:
    return {name: _prepare_value(value, options) for name, value in record.items()}


def infer_fields(
    sample: Mapping[str, Any],
    options: PrepareOptions,
    categories: Mapping[str, tuple[str, ...]],
) -> tuple[FieldSpec, ...]:
    """Derive the dataset's schema from its first prepared sample."""
    return tuple(
        _field(name, value, options, categories.get(name)) for name, value in sample.items()
    )


def _prepare_value(value: Any, options: PrepareOptions) -> Any:
    if isinstance(value, ImageFile):
        try:
            data, name = value.path.read_bytes(), str(value.path)
        except OSError as exc:
            raise SourceError(f"cannot read image `{value.path}`: {exc}") from exc
    elif isinstance(value, ImageBytes):
        data, name = value.data, value.name
    else:
        return value
    if not data:
        raise SourceError(f"image `{name}` is empty (0 bytes): remove it or re-export it.")
    decoded = decode_image(data, mode=options.image_mode, size=options.image_size, name=name)
    return _EncodedImage(data, decoded.shape[0]) if options.encoded else decoded


@dataclass(frozen=True)
class _EncodedImage:
    """Image bytes checked to decode; ``channels`` fixes the mode they decode to."""

    data: bytes
    channels: int


def _field(
    name: str, value: Any, options: PrepareOptions, categories: tuple[str, ...] | None
) -> FieldSpec:
    if isinstance(value, _EncodedImage):
        mode = options.image_mode or ("L" if value.channels == 1 else "RGB")
        return FieldSpec(name, "bytes", codec="image", image_mode=mode)
    if isinstance(value, bytes | bytearray | memoryview):
        return FieldSpec(name, "bytes")
    if isinstance(value, str):
        return FieldSpec(name, "string")
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind in "USV":
        raise SourceError(
            f"field `{name}` holds {array.dtype} values; store numbers, arrays, bytes or str."
        )
    return FieldSpec(
        name, "array", dtype=str(array.dtype), shape=array.shape, categories=categories
    )


def unwrap(value: Any) -> Any:
    """The value the writer stores: encoded images become their bytes."""
    return value.data if isinstance(value, _EncodedImage) else value
