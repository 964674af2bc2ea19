"""Every sample's length in a variable-length field, for length-bucketed batches.

Read from the shards' offsets (8 bytes a sample, through the dataset's store), so no value
is touched; a dataset of another kind can say its own lengths with ``sample_lengths()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loadwise.access.base import PackedBase
from loadwise.errors import ConfigError
from loadwise.format.fields import FieldSpec
from loadwise.format.reader import check_offsets


def sample_lengths(dataset: Any, field: str | None = None) -> np.ndarray:
    """int64 lengths of ``field`` (by default the dataset's one variable-length array field)."""
    own = getattr(dataset, "sample_lengths", None)
    if callable(own):
        return np.asarray(own(), np.int64)
    if not isinstance(dataset, PackedBase):
        raise ConfigError(
            f"length-bucketed batches need the lengths of the samples: a packed dataset with a "
            f"variable-length field, or a `sample_lengths()` method; a {type(dataset).__name__} "
            f"has neither."
        )
    spec = _field(dataset, field)
    parts = []
    for shard in dataset.manifest.shards:
        span = shard.buffers[spec.name]["offsets"]
        handle = dataset.store.open(shard.name, shard.num_bytes)
        try:
            offsets = np.frombuffer(handle.read(span.length, span.offset), np.int64)
        finally:
            handle.close()
        check_offsets(offsets, shard, spec, shard.buffers[spec.name]["data"].length)
        parts.append(np.diff(offsets))
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def _field(dataset: PackedBase, name: str | None) -> FieldSpec:
    variable = [f for f in dataset.manifest.fields if f.kind == "ragged"]
    if name is not None:
        return dataset.manifest.field(name)
    if len(variable) != 1:
        found = ", ".join(f.name for f in variable) or "none"
        raise ConfigError(
            f"length-bucketed batches need one variable-length (ragged) field in "
            f"`{dataset.root}` to measure; it has {found}."
        )
    return variable[0]
