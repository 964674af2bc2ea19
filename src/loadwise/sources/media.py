"""Values in a source's records that ``pack`` reads and decodes itself (in its worker
processes when asked), and the options that say how.

A source yields ``ImageFile(path)`` or ``ImageBytes(data, name)`` instead of pixels, so
reading and decoding run where ``pack`` puts them. Each kind of media is a ``Media``
subclass with a ``prepare(decode)`` method and its own options in ``DecodeOptions``:
adding one (audio, a URL to fetch) is a class here and a field there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loadwise.errors import ConfigError, SourceError
from loadwise.format import deep
from loadwise.format.codecs import IMAGE_MODES, decode_image
from loadwise.format.fields import EncodedImage
from loadwise.sources.audio import AudioOptions
from loadwise.sources.fit import RESIZE, fitted_image


def image_size_hw(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``image_size`` as (height, width); an int means a square, ``None`` keeps files' sizes."""
    if image_size is None:
        return None
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(d, int) and d >= 1 for d in size):
        raise ConfigError(
            f"`image_size` must be an int or (height, width) of ints >= 1. Found: {image_size!r}."
        )
    return int(size[0]), int(size[1])


@dataclass(frozen=True)
class ImageOptions:
    """How ``pack`` stores images: decoded to ``size`` (H, W) and ``mode`` (``L``/``RGB``;
    None keeps grayscale as L, the rest as RGB, and deeper images at their depth: 16-bit as
    uint16, 32-bit integer as int32, float as float32), or, with ``encoded``, as the files'
    bytes (checked to decode; ``size`` cannot apply then). A ``mode`` scales deeper images
    to 8 bits, never clips them. Either way EXIF orientation is applied. ``resize`` fits
    images to ``size``: ``stretch`` resizes to it, ``crop`` keeps the aspect ratio, covers
    the size and cuts the centre out (``fit.py``)."""

    size: tuple[int, int] | None = None
    mode: str | None = None
    encoded: bool = False
    resize: str = "stretch"

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", image_size_hw(self.size))
        if self.mode is not None and self.mode not in IMAGE_MODES:
            raise ConfigError(f"image mode must be one of {IMAGE_MODES}. Found: {self.mode!r}.")
        if self.resize not in RESIZE:
            raise ConfigError(f"`resize` must be one of {RESIZE}. Found: {self.resize!r}.")
        if self.encoded and self.size is not None:
            raise ConfigError(
                "`image_size` resizes decoded images; with `encoded=True` the files' bytes are "
                "kept as they are. Drop one of the two."
            )


def image_rules(options: ImageOptions) -> str:
    """What ``pack`` does to images under ``options``, as one sentence (``loadwise info``)."""
    if options.encoded:
        how = f"kept encoded, read as {options.mode or 'L or RGB'} (8-bit)"
    else:
        how = f"decoded to {options.mode or 'L or RGB'}"
        how += "" if options.size is None else f" at {options.size[0]}x{options.size[1]}"
    return f"{how}; {deep.RULES[options.mode]}; EXIF orientation applied"


@dataclass(frozen=True)
class DecodeOptions:
    """How ``pack`` decodes each kind of media it meets in records."""

    image: ImageOptions = field(default_factory=ImageOptions)
    audio: AudioOptions = field(default_factory=AudioOptions)


class Media:
    """A record value that ``pack`` reads and decodes (``prepare``) instead of storing it."""

    def prepare(self, decode: DecodeOptions) -> Any:
        """The value to store; ``SourceError`` naming the item if it cannot be read."""
        raise NotImplementedError


@dataclass(frozen=True)
class ImageFile(Media):
    """An image on disk, read and decoded by ``pack`` rather than by the source."""

    path: Path

    def prepare(self, decode: DecodeOptions) -> np.ndarray | EncodedImage:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read image `{self.path}`: {exc}") from exc
        return fitted_image(data, str(self.path), decode.image)


@dataclass(frozen=True)
class ImageBytes(Media):
    """An image's encoded bytes (from an archive, a download), decoded by ``pack``."""

    data: bytes
    name: str

    def prepare(self, decode: DecodeOptions) -> np.ndarray | EncodedImage:
        return fitted_image(self.data, self.name, decode.image)


def prepare_image(data: bytes, name: str, options: ImageOptions) -> np.ndarray | EncodedImage:
    """Decoded ``(C, H, W)`` pixels upright (uint8; with no mode asked, deeper images keep
    their depth: uint16, int32, float32), or the bytes once they are known to decode."""
    if not data:
        raise SourceError(f"image `{name}` is empty (0 bytes): remove it or re-export it.")
    decoded = decode_image(data, mode=options.mode, size=options.size, name=name)
    if not options.encoded:
        return decoded
    if decoded.dtype != np.uint8:  # encoded images decode to 8 bits on read
        raise SourceError(
            f"image `{name}` is {decoded.dtype} ({_DEPTHS.get(decoded.dtype.str, 'deep')}), and "
            f"encoded images are read as 8-bit L or RGB: pass `image_mode='L'` to have it "
            f"scaled to 8 bits when read, or pack it decoded (no `encoded`) to keep its depth."
        )
    return EncodedImage(data, options.mode or ("L" if decoded.shape[0] == 1 else "RGB"))


_DEPTHS = {"<u2": "16-bit", "<i4": "32-bit integer", "<f4": "floating point"}
