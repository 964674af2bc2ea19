"""Image decoding with Pillow: file bytes to channel-first uint8 arrays.

Decoding is strict: truncated files, decompression bombs and unknown formats raise
``SourceError`` naming the item, so ``pack`` can raise or skip by its ``on_error`` policy.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from loadwise.errors import ConfigError, SourceError

IMAGE_MODES = ("L", "RGB")
_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    UnidentifiedImageError,
    Image.DecompressionBombError,
)


def decode_image(
    data: bytes,
    *,
    mode: str | None = None,
    size: tuple[int, int] | None = None,
    name: str = "<bytes>",
) -> np.ndarray:
    """Decode image bytes to a ``(C, H, W)`` uint8 array in ``mode``, resized to ``size`` (H, W)."""
    if mode is not None and mode not in IMAGE_MODES:
        raise ConfigError(f"image mode must be one of {IMAGE_MODES}. Found: {mode!r}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            if size is not None:
                opened.draft(opened.mode, (size[1], size[0]))
            image = _to_mode(opened, mode)
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except (*_DECODE_ERRORS, Image.DecompressionBombWarning) as exc:
        raise SourceError(f"cannot decode image `{name}`: {exc}") from exc
    return array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))


def _to_mode(image: Image.Image, mode: str | None) -> Image.Image:
    """Convert to ``mode``; with no mode asked, keep grayscale as L and everything else as RGB."""
    if mode is None:
        mode = "L" if image.mode in ("1", "L", "I;16", "I", "F") else "RGB"
    if image.mode == mode:
        image.load()
        return image
    return image.convert(mode)
