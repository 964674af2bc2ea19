"""``Normalize``: uint8 images of a batch to float32 ``(x / 255 - mean) / std``, per channel.

One conversion and two in-place passes over the batch, on whatever device it lives on (the
GPU, when the loader moved it there first), keeping its memory format (channels-last stays).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from loadwise.errors import ConfigError
from loadwise.transforms.base import batch_field

#: The per-channel mean and std of ImageNet (RGB, on the 0..1 scale), as torchvision uses.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize:
    """Each field of ``fields``: uint8 ``[B, C, H, W]`` to float32 ``(x / 255 - mean) / std``.

    ``mean`` and ``std`` have one value per channel (or one for all), on the 0..1 scale.
    """

    def __init__(
        self,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        *,
        fields: Sequence[str] = ("image",),
    ) -> None:
        if len(mean) != len(std) or not len(mean):
            raise ConfigError(
                f"`mean` and `std` need one value per channel each. Found {len(mean)} and "
                f"{len(std)}."
            )
        if not all(s > 0 for s in std):
            raise ConfigError(f"every `std` must be positive. Found: {tuple(std)}.")
        self.mean, self.std, self.fields = tuple(mean), tuple(std), tuple(fields)
        self._factors: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = dict(batch)
        for name in self.fields:
            out[name] = self.images(batch_field(batch, name, "Normalize"))
        return out

    def images(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, C, H, W]`` (or ``[C, H, W]``) to float32, normalised per channel."""
        if images.dtype != torch.uint8:
            raise ConfigError(
                f"Normalize takes uint8 images (0..255); these are {images.dtype}. Were they "
                f"normalised already? Pass `normalize=False` or drop one of the two."
            )
        channels = images.shape[-3] if images.dim() >= 3 else 0
        if len(self.mean) not in (1, channels):
            raise ConfigError(
                f"Normalize has {len(self.mean)} mean/std values but the images have "
                f"{channels} channels (shape {tuple(images.shape)}): give one per channel."
            )
        scale, shift = self._factors_on(images.device)
        return images.to(torch.float32).mul_(scale).add_(shift)

    def _factors_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``1 / (255 std)`` and ``-mean / std`` as ``[C, 1, 1]``, made once per device."""
        found = self._factors.get(device)
        if found is None:
            std = torch.tensor(self.std, dtype=torch.float64)
            mean = torch.tensor(self.mean, dtype=torch.float64)
            found = self._factors[device] = (_per_channel(1 / (255 * std), device),
                                             _per_channel(-mean / std, device))  # fmt: skip
        return found

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_factors": {}}  # device tensors stay where they were made

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std}, fields={self.fields})"


def _per_channel(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    return values.to(torch.float32).view(-1, 1, 1).to(device)
