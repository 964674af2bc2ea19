"""What a batch transform is, and ``Compose`` to chain several into one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
