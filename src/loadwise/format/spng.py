"""libspng called directly (through ctypes, from pyspng's extension, which exports it).

pyspng's own ``load`` holds the GIL while it decodes (2 threads ran at 0.77x one here),
turns chunk CRC checks off (a damaged file decodes silently) and returns a fresh array per
image. Called through ctypes, libspng runs without the GIL (ctypes releases it), checks
every chunk's CRC and the zlib stream's Adler-32 itself (its defaults, with ancillary
chunks checked too, as Pillow does), and decodes straight into the batch buffer. Files it
refuses, or ones with EXIF (Pillow turns them upright), go to Pillow, which decodes or
names the damage. ``library()`` is None when pyspng is missing or exports no libspng.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

import numpy as np

_CRC_ERROR = 0  # spng_crc_action: a CRC mismatch is an error (critical and ancillary)
_FMT_G8, _FMT_RGB8 = 64, 4  # spng_format
_CHUNK_AVAILABLE = 73  # SPNG_ECHUNKAVAIL: the chunk is not in the file
_FORMATS = {"L": (_FMT_G8, 1), "RGB": (_FMT_RGB8, 3)}


class _Header(ctypes.Structure):
    _fields_ = [  # noqa: RUF012  (ctypes' declaration)
        ("width", ctypes.c_uint32),
        ("height", ctypes.c_uint32),
        ("bit_depth", ctypes.c_uint8),
        ("color_type", ctypes.c_uint8),
        ("compression_method", ctypes.c_uint8),
        ("filter_method", ctypes.c_uint8),
        ("interlace_method", ctypes.c_uint8),
    ]


class _Exif(ctypes.Structure):
    _fields_ = [("length", ctypes.c_size_t), ("data", ctypes.c_char_p)]  # noqa: RUF012


@functools.cache
def library() -> Any:
    """pyspng's extension as a ctypes library with libspng's functions typed, or None."""
    try:
        import pyspng._pyspng_c as extension
    except ImportError:
        return None
    try:
        lib = ctypes.CDLL(extension.__file__)
        lib.spng_ctx_new.restype = ctypes.c_void_p
        lib.spng_ctx_new.argtypes = [ctypes.c_int]
        lib.spng_ctx_free.argtypes = [ctypes.c_void_p]
        lib.spng_set_png_buffer.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        lib.spng_set_crc_action.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.spng_get_ihdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Header)]
        lib.spng_get_exif.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Exif)]
        lib.spng_decode_image.argtypes = [
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int
        ]  # fmt: skip
        lib.spng_strerror.restype = ctypes.c_char_p
        lib.spng_strerror.argtypes = [ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return lib


def decode_into(lib: Any, data: Any, out: np.ndarray, mode: str) -> str | None:
    """Decode the PNG ``data`` into ``out`` (``(H, W, C)`` uint8, C-contiguous) as ``mode``
    (``L`` or ``RGB``); None when done, else why libspng would not (damage, EXIF, another
    size): the caller hands the file to Pillow."""
    source = np.frombuffer(data, np.uint8)
    fmt, channels = _FORMATS[mode]
    ctx = lib.spng_ctx_new(0)
    if not ctx:
        return "libspng could not allocate a context"
    try:
        lib.spng_set_crc_action(ctx, _CRC_ERROR, _CRC_ERROR)
        error = lib.spng_set_png_buffer(ctx, source.ctypes.data, source.nbytes)
        header = _Header()
        error = error or lib.spng_get_ihdr(ctx, ctypes.byref(header))
        if error:
            return _why(lib, error)
        if (header.height, header.width, channels) != out.shape:
            return "its size differs from the batch's"
        error = lib.spng_decode_image(ctx, out.ctypes.data, out.nbytes, fmt, 0)
        if error:
            return _why(lib, error)
        exif = lib.spng_get_exif(ctx, ctypes.byref(_Exif()))
        if exif != _CHUNK_AVAILABLE:
            return "it has EXIF" if exif == 0 else _why(lib, exif)
        return None
    finally:
        lib.spng_ctx_free(ctx)


def _why(lib: Any, error: int) -> str:
    return str(lib.spng_strerror(error).decode(errors="replace"))
