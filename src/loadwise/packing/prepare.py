"""Turn source records into the values shards store: media read and decoded (or kept
encoded), everything else as it is.

Runs in ``pack``'s worker processes; a record that cannot be prepared comes back as a
``Failed`` naming the item, so the parent applies the ``on_error`` policy in source order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadwise.errors import SourceError
from loadwise.format.fields import FieldSpec, check_field_names, infer_field
from loadwise.sources.base import Record
from loadwise.sources.media import DecodeOptions, Media


@dataclass(frozen=True)
class Failed:
    """A record that could not be prepared, and why."""

    item: str
    reason: str


Prepared = tuple[str, "dict[str, Any] | Failed"]


def prepare_chunk(decode: DecodeOptions, chunk: Sequence[tuple[str, Record]]) -> list[Prepared]:
    """Prepare a chunk of records, keeping their order; failures are returned, not raised."""
    out: list[Prepared] = []
    for item, record in chunk:
        try:
            out.append((item, prepare_record(record, decode)))
        except SourceError as exc:
            out.append((item, Failed(item, str(exc))))
    return out


def prepare_record(record: Record, decode: DecodeOptions) -> dict[str, Any]:
    return {
        name: value.prepare(decode) if isinstance(value, Media) else value
        for name, value in record.items()
    }


def infer_fields(
    sample: Mapping[str, Any],
    categories: Mapping[str, tuple[str, ...]],
    schema: Sequence[FieldSpec] = (),
    item: str = "",
) -> tuple[FieldSpec, ...]:
    """The dataset's fields: those ``schema`` names as given, the others derived from the
    first prepared sample (``item``); in the sample's order, then any the sample lacks.
    Names a batch could not hold apart are refused (``check_field_names``)."""
    given = {spec.name: spec for spec in schema}
    fields = []
    for name, value in sample.items():
        if name in given:
            fields.append(given.pop(name))
            continue
        if not isinstance(name, str):
            check_field_names([FieldSpec(name)], item)  # refuses it, naming the sample
        try:
            fields.append(infer_field(name, value, categories.get(name)))
        except SourceError as exc:
            raise SourceError(f"sample `{item}`: {exc}") from None
    check_field_names([*fields, *given.values()], item)
    return (*fields, *given.values())
