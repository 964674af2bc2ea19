"""``on_error="fallback"``: an item that cannot be read is stored as a placeholder sample, and
every sample carries a ``valid`` flag (False for placeholders) so training can mask them.

A placeholder holds each field's empty value: zeros for arrays (a black image), an empty
clip for variable-length arrays (silence of length 0), ``""`` and ``b""`` for text and
bytes, a 1 x 1 black image for encoded images. The failure itself is listed in the
manifest's ``skipped`` entries like a skipped item's, with its reason.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from loadwise.errors import SourceError
from loadwise.format.fields import (
    BytesField,
    EncodedImage,
    FieldSpec,
    FixedField,
    ImageField,
    RaggedField,
    StringField,
)

#: The field every sample of a fallback pack carries: False for a placeholder.
VALID = "valid"


def with_valid(sample: Mapping[str, Any], item: str) -> dict[str, Any]:
    """A readable sample, marked valid; refused if it has a field of that name already."""
    if VALID in sample:
        raise SourceError(
            f"sample `{item}` has a field `{VALID}`, which on_error='fallback' adds to mark "
            f"placeholders; rename that field or use on_error='skip'."
        )
    return {**sample, VALID: np.bool_(True)}


def placeholder(fields: Sequence[FieldSpec]) -> dict[str, Any]:
    """A sample of each field's empty value, marked not valid."""
    sample = {spec.name: _empty(spec) for spec in fields}
    sample[VALID] = np.bool_(False)
    return sample


def valid_rows(count: int) -> np.ndarray:
    """The ``valid`` column of a block of readable samples."""
    return np.ones(count, np.bool_)


def _empty(spec: FieldSpec) -> Any:
    if isinstance(spec, FixedField):
        return np.zeros(spec.shape, spec.numpy_dtype)
    if isinstance(spec, RaggedField):
        return np.zeros(0, spec.element_dtype)
    if isinstance(spec, ImageField):
        return EncodedImage(_black_png(spec.mode), spec.mode)
    if isinstance(spec, StringField):
        return ""
    if isinstance(spec, BytesField):
        return b""
    raise SourceError(
        f"on_error='fallback' has no placeholder for field `{spec.name}` ({spec.kind})."
    )


def _black_png(mode: str) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (1, 1)).save(out, format="PNG")
    return out.getvalue()
