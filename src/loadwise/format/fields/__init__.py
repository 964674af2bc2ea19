"""Field kinds: one class per kind, and the one registry that names them.

Adding a kind is a module here plus a line in ``KINDS`` (and, if values of it can be
recognised in a sample, a place in ``INFERRED``); ``tests/contracts`` proves it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loadwise.errors import SourceError
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
#: Names a batch gives entries of its own (``get_batch`` adds each sample's ``index``).
RESERVED = ("index",)


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


def check_field_names(fields: Sequence[FieldSpec], item: str) -> None:
    """Refuse names a batch could not hold apart: not text, reserved (``index``), or equal to
    a companion entry another field adds (a ragged field's ``<name>_lengths``)."""
    companions = {f.lengths_name: f.name for f in fields if isinstance(f, RaggedField)}
    for spec in fields:
        name = spec.name
        if isinstance(name, str) and not _encodes(name):
            raise SourceError(
                f"sample `{item}` has a field named {name!r}, which is not valid text (a lone "
                f"surrogate); rename it."
            )
        if not isinstance(name, str) or not name or not name.isprintable():
            raise SourceError(
                f"sample `{item}` has a field named {name!r}; field names are non-empty "
                f"printable strings. Rename it."
            )
        if name in RESERVED or name in companions:
            owner = f"field `{companions[name]}`'s lengths" if name in companions else "the index"
            raise SourceError(
                f"sample `{item}` has a field named `{name}`, but batches use that name for "
                f"{owner}; rename it (e.g. `{name}_`)."
            )


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


__all__ = [
    "INFERRED",
    "KINDS",
    "RAGGED_OUTPUTS",
    "RESERVED",
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
    "check_field_names",
    "field_from_dict",
    "infer_field",
]
