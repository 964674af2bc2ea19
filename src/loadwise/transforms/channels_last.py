"""``normalize_channels_last``: ``Normalize.images`` for channels-last uint8 batches, faster.

``Normalize`` broadcasts ``[C, 1, 1]`` factors, which on channels-last memory puts the
channel (3 values) innermost, where nothing vectorises; making the batch NCHW first costs
a permuting copy. Here the batch's memory is read as rows of ``K`` whole pixels
(``[-1, C x K]``) and the factors tiled ``K`` times, so one conversion pass and two affine
passes run over contiguous rows. Measured here (one thread, uint8 -> float32): 32 x 224^2
3.6 ms vs 7.5, 5 x 672^2 6.9 ms vs 10.2. The output stays channels-last; values equal
``Normalize.images`` to float rounding.
"""

from __future__ import annotations

import math

import torch

from loadwise.transforms.normalize import Normalize

#: Pixels per row: the factors are tiled this many times (fewer if the pixel count says so).
ROW_PIXELS = 256


def normalize_channels_last(images: torch.Tensor, normalize: Normalize) -> torch.Tensor:
    """uint8 ``[B, C, H, W]`` to float32 ``(x / 255 - mean) / std`` as ``normalize`` says,
    channels-last out; other inputs go through ``normalize.images`` as they are."""
    batch, channels, height, width = images.shape if images.dim() == 4 else (0, 0, 0, 0)
    row = math.gcd(batch * height * width, ROW_PIXELS)
    if (
        images.dim() != 4
        or images.dtype != torch.uint8
        or row < 16
        or len(normalize.mean) not in (1, channels)
        or not images.is_contiguous(memory_format=torch.channels_last)
    ):
        return normalize.images(images)
    std = torch.tensor(normalize.std, dtype=torch.float64)
    mean = torch.tensor(normalize.mean, dtype=torch.float64)
    scale, shift = (
        v.expand(channels).repeat(row).to(torch.float32).to(images.device)
        for v in (1 / (255 * std), -mean / std)
    )
    out = torch.empty(images.shape, dtype=torch.float32, device=images.device,
                      memory_format=torch.channels_last)  # fmt: skip
    rows = out.permute(0, 2, 3, 1).view(-1, channels * row)  # whole pixels, C values each
    rows.copy_(images.permute(0, 2, 3, 1).view(-1, channels * row))
    rows.mul_(scale).add_(shift)
    return out
