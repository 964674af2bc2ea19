"""Field kinds: one class per kind, and the one registry that names them.

Adding a kind is a module here plus a line in ``KINDS`` (and, if values of it can be
recognised in a sample, a place in ``INFERRED``); ``tests/contracts`` proves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadwise.format.fields.array import ArrayField
from loadwise.format.fields.base import (
    BufferReader,
    FieldSpec,
    FixedField,
    ReadOptions,
    Segment,
)
from loadwise.format.fields.binary import BytesField, StringField
from loadwise.format.fields.image import EncodedImage, ImageField
from loadwise.format.fields.ragged import RAGGED_OUTPUTS, RaggedField

#: Every field kind, by the name the manifest gives it.
KINDS: dict[str, type[FieldSpec]] = {
    kind.kind: kind for kind in (ArrayField, BytesField, StringField, ImageField, RaggedField)
}
#: Kinds recognised from a sample's value, tried in this order (arrays take the rest).
INFERRED = (ImageField, StringField, BytesField)


def field_from_dict(raw: Mapping[str, Any]) -> FieldSpec:
    """The field a manifest entry describes; ``ValueError`` naming it if it is not valid."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"a field entry is a {type(raw).__name__}, not an object")
    kind = KINDS.get(str(raw.get("kind")))
    if kind is None:
        raise ValueError(
            f"field {raw.get('name')!r} has unknown kind {raw.get('kind')!r} "
            f"(known: {', '.join(KINDS)})"
        )
    return kind.from_dict(raw)


def infer_field(name: str, value: Any, categories: tuple[str, ...] | None = None) -> FieldSpec:
    """The field a sample's prepared value implies (``SourceError`` if none can hold it)."""
    for kind in INFERRED:
        if (spec := kind.infer(name, value)) is not None:
            return spec
    return ArrayField.of(name, value, categories)


__all__ = [
    "INFERRED",
    "KINDS",
    "RAGGED_OUTPUTS",
    "ArrayField",
    "BufferReader",
    "BytesField",
    "EncodedImage",
    "FieldSpec",
    "FixedField",
    "ImageField",
    "RaggedField",
    "ReadOptions",
    "Segment",
    "StringField",
    "field_from_dict",
    "infer_field",
]
