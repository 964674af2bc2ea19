"""EXIF orientation: images are decoded the way they are meant to be seen.

Cameras store pixels as the sensor read them and say in the EXIF ``Orientation`` tag (1-8)
how to turn them; viewers and image loaders (``PIL.ImageOps.exif_transpose``, torchvision's
``decode_image(apply_exif_orientation=True)``) apply it, so loadwise does too, at ``pack``
for decoded images and at read for encoded ones. JPEG headers are read here without Pillow
(a few microseconds), so the fast JPEG path can check every image.
"""

from __future__ import annotations

from typing import Literal

from PIL import Image

_ORIENTATION_TAG = 0x0112
_MAX_ENTRIES = 1024
#: Orientation -> the transpose that makes the image upright (1: nothing to do).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
#: Orientations that swap width and height.
SWAPS = frozenset((5, 6, 7, 8))


def jpeg_orientation(data: bytes | memoryview) -> int:
    """The EXIF orientation (1-8) in JPEG bytes' headers; 1 if there is none or it is
    unreadable (the image is then shown as stored, as viewers do)."""
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return 1
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):  # EXIF is among the first APPn
            return 1  # segments: past them (tables, frame, scan) there is none to find
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xE1 and bytes(data[pos + 4 : pos + 10]) == b"Exif\0\0":
            return _tiff_orientation(data, pos + 10, min(pos + 2 + length, end))
        pos += 2 + length
    return 1


def orientation(image: Image.Image, data: bytes | memoryview) -> int:
    """The EXIF orientation of an opened image (``data``: its bytes)."""
    if image.format == "JPEG":
        return jpeg_orientation(data)
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except (OSError, ValueError, SyntaxError):  # a damaged EXIF block: shown as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _tiff_orientation(data: bytes | memoryview, base: int, end: int) -> int:
    """The orientation tag of the first IFD of the EXIF (TIFF) block ``data[base:end]``,
    read in place (a block may hold a thumbnail: tens of KB not worth copying)."""
    head = bytes(data[base : base + 2])
    if end - base < 8 or head not in (b"II", b"MM"):
        return 1
    order: Literal["little", "big"] = "little" if head == b"II" else "big"
    ifd = base + int.from_bytes(data[base + 4 : base + 8], order)
    if ifd + 2 > end:
        return 1
    count = int.from_bytes(data[ifd : ifd + 2], order)
    for entry in range(ifd + 2, ifd + 2 + 12 * min(count, _MAX_ENTRIES), 12):
        if entry + 12 > end:
            return 1
        if int.from_bytes(data[entry : entry + 2], order) == _ORIENTATION_TAG:
            value = int.from_bytes(data[entry + 8 : entry + 10], order)
            return value if 1 <= value <= 8 else 1
    return 1
