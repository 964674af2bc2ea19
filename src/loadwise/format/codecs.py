"""Image decoding: file bytes to channel-first uint8 arrays.

Pillow decodes everything; full-size JPEG decodes go to simplejpeg (about 1.8x faster here
with the same pixels: both are libjpeg-turbo with the same IDCT and upsampling), and plain
8-bit gray or RGB PNGs to libspng (lossless, so the same pixels; 6-9x Pillow on 105x105
drawings), called through ctypes from pyspng's wheel (``spng.py``: without the GIL, CRCs
and the zlib stream checked, straight into the batch buffer). Both are small wheels
installed with loadwise; without them Pillow does it. With a target ``size`` a JPEG
decodes at the reduced DCT scale Pillow's ``draft`` would pick (with either decoder, the
same scaled IDCT), then torch's uint8 bilinear resizes it (``resized``).
Decoding is strict: truncated files, decompression bombs and unknown formats raise
``SourceError`` naming the item, so ``pack`` can raise or skip by its ``on_error`` policy.

Bit depth is kept: with no ``mode`` asked, 16-bit grayscale decodes to uint16, 32-bit
integer to int32 and floating point to float32 (one channel each). Asking for ``L`` or
``RGB`` converts them to 8 bits by scaling, never by clipping: 16-bit values by 255/65535,
32-bit integers the same when they lie in 0-65535, floats from [0, 1]; values outside those
ranges are refused (``SourceError``) rather than clipped. EXIF orientation is applied
(``exif.py``), as image viewers and torchvision do.
"""

from __future__ import annotations

import functools
import io
import struct
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from loadwise.errors import ConfigError, SourceError
from loadwise.format import crop as crops
from loadwise.format import deep, exif, spng
from loadwise.gather.rows import torch_threads_safe
from loadwise.gather.threads import Threads

IMAGE_MODES = ("L", "RGB")
#: Which pixels decoding to a size gives: 2 since JPEGs decode with simplejpeg at Pillow's
#: draft scale and torch resizes (within one level of Pillow's resize before). Part of the
#: keys of a resumed pack and of the HF cache, so older pixels are never mixed with these.
SIZED_DECODE_REVISION = 2
#: Encoded image bytes: a ``bytes`` object, or a view of a buffer (no copy to decode it).
Encoded = bytes | memoryview
_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_SPACES = {"Gray": "L", "YCbCr": "RGB", "RGB": "RGB"}
_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    UnidentifiedImageError,
    Image.DecompressionBombError,
)


def decode_image(
    data: Encoded,
    *,
    mode: str | None = None,
    size: tuple[int, int] | None = None,
    name: str = "<bytes>",
) -> np.ndarray:
    """Decode image bytes to a ``(C, H, W)`` array upright (EXIF orientation applied),
    resized to ``size`` (H, W): uint8 in ``mode``, or with no mode deeper images at their
    own depth (uint16, int32, float32)."""
    if mode is not None and mode not in IMAGE_MODES:
        raise ConfigError(f"image mode must be one of {IMAGE_MODES}. Found: {mode!r}.")
    if data[:3] == _JPEG_MAGIC and (fast := _simplejpeg()) is not None:
        decoded = _decode_jpeg(fast, data, mode, name, size)
        if decoded is not None:
            return decoded
    head = _png_header(data) if size is None else None
    if head is not None and _png_plain(head, mode):
        decoded = _decode_png(data, head)
        if decoded is not None:
            return decoded
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            if mode is None and _wide_colour(opened):
                raise SourceError(
                    f"cannot decode image `{name}` at its depth: it has 16-bit colour, which "
                    f"Pillow reads only as 8 bits (each value's high byte). Pass "
                    f"`image_mode='RGB'` to store it so, or convert it to 16-bit grayscale."
                )
            turn = exif.orientation(opened, data)
            if size is not None:  # a reduced JPEG decode, at least ``size`` once turned
                opened.draft(
                    opened.mode, (size[0], size[1]) if turn in exif.SWAPS else (size[1], size[0])
                )
            opened.load()
            upright = opened.transpose(exif.UPRIGHT[turn]) if turn in exif.UPRIGHT else opened
            if _DEEP.get(upright.mode) is not None:
                array = deep.decoded(upright, _DEEP[upright.mode], mode, size, name)
            else:
                array = _pixels(upright, mode)
                if size is not None and array.shape[:2] != size:
                    return resized(array, size)
    except SourceError:  # already names the image (a deep one that cannot be scaled)
        raise
    except (*_DECODE_ERRORS, Image.DecompressionBombWarning) as exc:
        raise SourceError(f"cannot decode image `{name}`: {exc}") from exc
    return array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))


#: Modes deeper than 8 bits per channel, and the dtype they keep (``deep.py``).
_DEEP: dict[str, np.dtype] = {
    "I;16": np.dtype(np.uint16), "I;16L": np.dtype(np.uint16), "I;16B": np.dtype(np.uint16),
    "I;16N": np.dtype(np.uint16), "I": np.dtype(np.int32), "F": np.dtype(np.float32),
}  # fmt: skip


def _wide_colour(image: Image.Image) -> bool:
    """Colour with 16 bits a channel (a 48/64-bit PNG, a 16-bit RGB TIFF), which Pillow
    decodes to 8 bits: told from the raw mode of its tiles before anything is decoded."""
    if image.mode not in ("RGB", "RGBA", "CMYK", "LA"):
        return False
    for tile in getattr(image, "tile", None) or ():
        raw = tile[3][0] if isinstance(tile[3], tuple) and tile[3] else tile[3]
        if isinstance(raw, str) and ";16" in raw:
            return True
    return False


def _pixels(image: Image.Image, mode: str | None) -> np.ndarray:
    """An 8-bit image as uint8 ``(H, W)`` or ``(H, W, 3)`` in ``mode``."""
    return np.asarray(_to_mode(image, mode), dtype=np.uint8)


def _to_mode(image: Image.Image, mode: str | None) -> Image.Image:
    """Convert to ``mode``; with no mode asked, keep grayscale as L and everything else as RGB
    (deeper images never come here: ``deep.py``)."""
    if mode is None:
        mode = "L" if image.mode in ("1", "L") else "RGB"
    if image.mode == mode:
        image.load()
        return image
    return image.convert(mode)


@functools.cache
def _simplejpeg() -> ModuleType | None:
    """The simplejpeg module if installed (the ``jpeg`` extra), else None: Pillow decodes."""
    try:
        import simplejpeg
    except ImportError:
        return None
    return simplejpeg


def _decode_jpeg(
    fast: ModuleType, data: Encoded, mode: str | None, name: str, size: tuple[int, int] | None
) -> np.ndarray | None:
    """Decode with simplejpeg (at Pillow's ``draft`` scale and then ``resized`` when a
    ``size`` is asked); None where its pixels could differ from Pillow's (CMYK, color to
    grayscale: Pillow's luma formula is not the JPEG's Y channel; EXIF turns): Pillow does."""
    try:
        height, width, space, _ = fast.decode_jpeg_header(data)
    except ValueError as exc:
        raise SourceError(f"cannot decode image `{name}`: {exc}") from exc
    if space not in _JPEG_SPACES or (mode == "L" and space != "Gray"):
        return None
    if exif.jpeg_orientation(data) != 1:
        return None  # Pillow turns it upright
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and height * width > limit:
        raise SourceError(
            f"cannot decode image `{name}`: {height}x{width} pixels is over the decompression "
            f"bomb limit of {limit} (PIL.Image.MAX_IMAGE_PIXELS)."
        )
    mode = mode or _JPEG_SPACES[space]
    scale = _draft_scale(height, width, size)
    try:
        array = fast.decode_jpeg(
            data,
            colorspace="GRAY" if mode == "L" else "RGB",
            min_height=-(-height // scale),
            min_width=-(-width // scale),
        )
    except ValueError as exc:
        raise SourceError(f"cannot decode image `{name}`: {exc}") from exc
    if size is not None and array.shape[:2] != size:
        return resized(array, size)
    return (
        array.transpose(2, 0, 1) if mode == "L" else np.ascontiguousarray(array.transpose(2, 0, 1))
    )


def _draft_scale(height: int, width: int, size: tuple[int, int] | None) -> int:
    """The DCT scale (1, 2, 4 or 8) Pillow's ``draft`` picks to decode at least ``size``:
    both decoders then run libjpeg-turbo's same scaled IDCT."""
    if size is None:
        return 1
    most = min(height // size[0], width // size[1])
    return next((scale for scale in (8, 4, 2, 1) if most >= scale), 1)


def resized(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` uint8 pixels at ``size`` (H, W), as ``(C, H, W)``: torch's
    uint8 bilinear, antialiased where it shrinks (``transforms.resize``), which gives
    Pillow's bilinear filter to within one level at about 3x its speed here (384 -> 224 RGB:
    0.40-0.47 vs 1.40 ms on one core)."""
    from loadwise.transforms.resize import resize_images

    if not torch_threads_safe():
        torch.set_num_threads(1)  # a forked child must not enter the parent's OpenMP pool
    planes = pixels[..., None] if pixels.ndim == 2 else pixels
    if not planes.flags.writeable:  # Pillow's bytes: torch wants memory it may write
        planes = planes.copy()
    images = torch.from_numpy(planes).permute(2, 0, 1)  # channels-last: torch's fast path
    return np.ascontiguousarray(resize_images(images, size).numpy())


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: PNG colour types libspng decodes to the same pixels Pillow gives: 8-bit gray, 8-bit RGB.
_PNG_PLAIN = {0: "L", 2: "RGB"}


def _png_header(data: Encoded) -> tuple[int, int, str | None] | None:
    """Height, width and the mode a plain 8-bit gray/RGB PNG decodes to (None: another
    kind, for Pillow), from its IHDR; None if not a PNG or libspng is missing."""
    if len(data) < 33 or data[:8] != _PNG_MAGIC or data[12:16] != b"IHDR":
        return None
    if spng.library() is None:
        return None
    width, height, depth, colour = struct.unpack_from(">IIBB", data, 16)
    plain = _PNG_PLAIN.get(colour) if depth == 8 else None
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and height * width > limit:
        plain = None  # Pillow names the bomb
    return height, width, plain


def _png_plain(head: tuple[int, int, str | None], mode: str | None) -> bool:
    return head[2] is not None and (mode is None or mode == head[2])


def _decode_png(data: Encoded, head: tuple[int, int, str | None]) -> np.ndarray | None:
    """A plain PNG (``_png_header``) as ``(C, H, W)`` through libspng; None when libspng
    refuses it (damage, EXIF): Pillow decodes it or names the damage."""
    height, width, native = head
    assert native is not None  # _png_plain said so
    out = np.empty((height, width, 1 if native == "L" else 3), np.uint8)
    if spng.decode_into(spng.library(), data, out, native) is not None:
        return None
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def _decode_pngs(
    datas: Sequence[Encoded],
    first: tuple[int, int, str | None],
    mode: str | None,
    allocate: Callable[[tuple[int, ...]], np.ndarray],
    threads: Threads | None,
    crop: tuple[int, int] | None,
    name: str,
) -> np.ndarray | None:
    """Same-size plain PNGs into one ``(N, H, W, C)`` buffer; None if they differ."""
    height, width, native = first
    if native is None or not _png_plain(first, mode):
        return None
    channels = 1 if native == "L" else 3
    into = crops.Into(height, width, channels, crop, name)
    out = allocate((len(datas), *into.size, channels))
    lib = spng.library()

    def decode_rows(rows: range) -> None:
        for j in rows:
            target = into.target(out[j])
            if _png_header(datas[j]) != first or spng.decode_into(lib, datas[j], target, native):
                raise _NotAlike  # one by one: Pillow decodes a refused image or names it
            into.done(target, out[j])

    return _all_rows(decode_rows, len(datas), threads, out)


def decode_batch(
    datas: Sequence[Encoded],
    *,
    mode: str | None,
    names: list[str],
    allocate: Callable[[tuple[int, ...]], np.ndarray] = lambda shape: np.empty(shape, np.uint8),
    threads: Threads | None = None,
    crop: tuple[int, int] | None = None,
) -> np.ndarray | None:
    """Same-size JPEGs decoded into one ``(N, H, W, C)`` buffer, returned as an
    ``(N, C, H, W)`` view; None when this fast path does not apply (then decode one by one).

    One allocation per batch instead of one per image plus a copy to stack them: 1.7x the
    per-image rate here (fresh 200 KB buffers page-fault on every image). ``allocate``
    gives the uint8 buffer for a shape (e.g. in shared memory, so a worker sends it as is);
    ``threads`` share the images out (simplejpeg releases the GIL: 1.9x with 2 threads here).
    With ``crop`` (height, width) the buffer holds each image's centre crop only.
    """
    if datas and (png := _png_header(datas[0])) is not None:
        return _decode_pngs(datas, png, mode, allocate, threads, crop, names[0])
    fast = _simplejpeg()
    first = _jpeg_header(fast, datas[0]) if fast is not None and datas else None
    if fast is None or first is None:
        return None
    height, width, native = first
    limit = Image.MAX_IMAGE_PIXELS
    if native is None or (mode == "L" and native != "L") or (limit and height * width > limit):
        return None  # one by one decodes with Pillow, or names the bomb
    target = mode or native
    channels = 1 if target == "L" else 3
    into = crops.Into(height, width, channels, crop, names[0])
    out = allocate((len(datas), *into.size, channels))

    def decode_rows(rows: range) -> None:
        for j in rows:
            head = _jpeg_header(fast, datas[j])
            if not _alike(head, height, width, mode, target):
                raise _NotAlike
            buffer = into.target(out[j])
            try:
                fast.decode_jpeg(datas[j], colorspace="GRAY" if target == "L" else "RGB",
                                 buffer=buffer)  # fmt: skip
            except ValueError as exc:
                raise SourceError(f"cannot decode image `{names[j]}`: {exc}") from exc
            into.done(buffer, out[j])

    return _all_rows(decode_rows, len(datas), threads, out)


def _alike(
    head: tuple[int, int, str | None] | None, height: int, width: int, mode: str | None, target: str
) -> bool:
    """Whether an image with JPEG header ``head`` decodes like the batch's first."""
    if head is None or head[2] is None or head[:2] != (height, width):
        return False
    return (mode or head[2]) == target and not (mode == "L" and head[2] != "L")


class _NotAlike(Exception):
    """Images of one batch differ in size or mode: they are decoded one by one instead."""


def _jpeg_header(fast: ModuleType, data: Encoded) -> tuple[int, int, str | None] | None:
    """Height, width and the mode it decodes to by default (None: not for simplejpeg, e.g.
    CMYK) of a JPEG; None if it is not a readable JPEG (one by one names the sample)."""
    if data[:3] != _JPEG_MAGIC or exif.jpeg_orientation(data) != 1:
        return None  # not a JPEG, or one to turn upright: decoded one by one
    try:
        height, width, space, _ = fast.decode_jpeg_header(data)
    except ValueError:
        return None
    return height, width, _JPEG_SPACES.get(space)


def _all_rows(
    decode_rows: Callable[[range], None], count: int, threads: Threads | None, out: np.ndarray
) -> np.ndarray | None:
    """Run ``decode_rows`` over every row (on ``threads`` when given): the batch ``(B, C, H,
    W)``, or None when an image was not alike the first (the caller decodes one by one)."""
    try:
        if threads is None:
            decode_rows(range(count))
        else:
            threads.for_each(decode_rows, count)
    except _NotAlike:
        return None
    return out.transpose(0, 3, 1, 2)
