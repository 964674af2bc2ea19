"""Images deeper than 8 bits (16-bit and 32-bit integer, floating point): kept at their depth,
or scaled to 8 bits when a mode is asked for, never clipped.

Pillow's own ``convert("L")`` clips such images (a 16-bit PNG becomes 0 or 255 almost
everywhere); the conversions here scale instead, and refuse values that no fixed scale maps
into 0-255 without clipping. 16-bit colour (a 48-bit PNG) is a limit of Pillow, which reads
only its high bytes: ``codecs.py`` refuses it unless a mode is asked (then it is 8-bit).
What ``pack`` does is written in the manifest's ``source`` and shown by ``loadwise info``
(``RULES``).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from loadwise.errors import SourceError

_UINT16_MAX = 65535
#: What happens to deeper images, as ``loadwise info`` says it (by the mode asked for).
RULES = {
    None: "16-bit, 32-bit integer and float images keep their depth (uint16, int32, float32)",
    "L": "16-bit images (and 32-bit integer ones within 0-65535) scaled to 8 bits by 255/65535, "
    "float images scaled from [0, 1]; values beyond those are refused, never clipped",
}
RULES["RGB"] = RULES["L"] + "; grayscale repeated in 3 channels"


def decoded(
    image: Image.Image,
    dtype: np.dtype,
    mode: str | None,
    size: tuple[int, int] | None,
    name: str,
) -> np.ndarray:
    """A deep grayscale image as ``(H, W)`` of ``dtype`` (no mode asked), else as 8-bit
    ``(H, W)`` (``L``) or ``(H, W, 3)`` (``RGB``), resized to ``size`` (H, W)."""
    array = np.asarray(image).astype(dtype.newbyteorder("="), copy=False)  # I;16B: native
    if size is not None and array.shape != size:
        array = _resized(array, size)
    if mode is None:
        return array
    gray = to_8bit(array, name)
    return gray if mode == "L" else np.repeat(gray[:, :, None], 3, axis=2)


def to_8bit(array: np.ndarray, name: str) -> np.ndarray:
    """Deep values scaled to uint8 by their type's fixed scale; ``SourceError`` for values a
    fixed scale would clip (a float outside [0, 1], an integer outside 0-65535)."""
    if array.dtype.kind == "f":
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if not (low >= 0.0 and high <= 1.0):  # NaN fails too
            raise _unscalable(name, f"float values in [{low:g}, {high:g}]", "[0, 1]")
        return np.rint(array * 255.0).astype(np.uint8)
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if low < 0 or high > _UINT16_MAX:
        raise _unscalable(name, f"integer values in [{low}, {high}]", "0-65535")
    wide = array.astype(np.uint32)
    return ((wide * 255 + _UINT16_MAX // 2) // _UINT16_MAX).astype(np.uint8)


def _resized(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize at full depth (floats for 16-bit values, exact; 32-bit integers as
    Pillow's ``I`` mode), rounded back to the dtype."""
    height, width = size
    if array.dtype == np.int32:
        source = Image.fromarray(array, "I")
    else:
        source = Image.fromarray(array.astype(np.float32), "F")
    out = np.asarray(source.resize((width, height), Image.Resampling.BILINEAR))
    if array.dtype.kind == "f":
        return out.astype(array.dtype)
    info = np.iinfo(array.dtype)  # bilinear stays within the inputs' range: clip is a no-op
    return np.clip(np.rint(out), info.min, info.max).astype(array.dtype)


def _unscalable(name: str, found: str, scale: str) -> SourceError:
    return SourceError(
        f"cannot decode image `{name}` to 8 bits: it holds {found}, and only {scale} scales "
        f"into 0-255 without clipping. Pack without `image_mode` to keep its depth, or "
        f"rescale the file."
    )
