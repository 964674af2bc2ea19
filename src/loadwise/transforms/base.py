"""What a batch transform is, ``Compose`` to chain several into one, and ``batch_field``:
the image field every image transform takes, as one tensor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from loadwise.errors import ConfigError

#: A batch dict (``{field: tensor or list}``) in, a batch dict out.
BatchTransform = Callable[[dict[str, Any]], dict[str, Any]]


class Compose:
    """Apply ``transforms`` in order, each to the batch the one before returned."""

    def __init__(self, *transforms: BatchTransform) -> None:
        self.transforms = tuple(transforms)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        for transform in self.transforms:
            batch = transform(batch)
        return batch

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.transforms))})"


def batch_field(batch: Any, name: str, who: str) -> torch.Tensor:
    """Field ``name`` of a batch dict as one tensor, or an error naming what is there."""
    if not isinstance(batch, dict) or name not in batch:
        have = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ConfigError(
            f"{who} found no field `{name}` in the batch (it has {have}): pass `fields=` "
            f"naming the image field(s)."
        )
    value = batch[name]
    if not isinstance(value, torch.Tensor):
        raise ConfigError(
            f"{who} needs field `{name}` as one tensor [B, C, H, W]; it is a "
            f"{type(value).__name__} (images of different sizes?)."
        )
    return value
