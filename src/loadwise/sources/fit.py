"""How a decoded image is fitted to ``image_size``: ``stretch`` (resized to it, aspect ratio
not kept) or ``crop`` (the shorter side resized to fit, then the centre cut out).

``stretch`` is what Pillow's ``resize`` does and what ``pack`` always did; it decodes JPEGs
at a reduced scale when that is still large enough. ``crop`` keeps the aspect ratio: the
image is decoded at full size (so any orientation handling of the decoder applies first),
scaled so that it covers the target, and cut to it around its centre.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from loadwise.sources.media import ImageOptions

#: The resize policies: resize to the size, or cover it and cut the centre out.
RESIZE = ("stretch", "crop")


def fitted_image(data: bytes, name: str, options: ImageOptions) -> Any:
    """The image ``data`` prepared as ``options`` ask: decoded, converted and fitted to their
    size by their resize policy (or kept encoded)."""
    from loadwise.sources.media import prepare_image  # media imports this module

    if options.resize == "stretch" or options.size is None:
        return prepare_image(data, name, options)
    decoded = prepare_image(data, name, replace(options, size=None, resize="stretch"))
    assert isinstance(decoded, np.ndarray), "`size` and `encoded` are never given together"
    return cover_crop(decoded, options.size)


def cover_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A ``(C, H, W)`` uint8 image scaled to cover ``size`` (H, W), then its centre cut out."""
    channels, height, width = image.shape
    scale = max(size[0] / height, size[1] / width)
    covered = (max(size[0], round(height * scale)), max(size[1], round(width * scale)))
    if covered != (height, width):
        plane = image[0] if channels == 1 else image.transpose(1, 2, 0)
        resized = Image.fromarray(plane).resize((covered[1], covered[0]), Image.Resampling.BILINEAR)
        pixels = np.asarray(resized)
        image = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    top, left = (covered[0] - size[0]) // 2, (covered[1] - size[1]) // 2
    return np.ascontiguousarray(image[:, top : top + size[0], left : left + size[1]])
