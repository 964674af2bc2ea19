"""Media for the multimodal tests, made in memory: JPEGs, a PNG declaring 50,000 x 50,000
pixels, audio clips (tones, or espeak-ng speech where installed), small Hugging Face datasets
built in-process. Nothing is downloaded."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from loadwise.testing.sounds import clip_bytes, tone


def jpeg(seed: int, size: tuple[int, int] = (48, 64)) -> bytes:
    """A noisy RGB JPEG of ``size`` (H, W) with a coloured block, different per seed."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    pixels[4:20, 4:20] = rng.integers(0, 256, 3, dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels, with a tiny payload: a
    decoder that trusted it would try to allocate ~7.5 GB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def flac(seconds: float, rate: int, channels: int, seed: int = 0) -> bytes:
    return clip_bytes(tone(seconds, rate, channels=channels, seed=seed), rate, "FLAC")


def wav(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> bytes:
    return clip_bytes(tone(seconds, rate, channels=channels, seed=seed), rate, "WAV", "PCM_16")


def audio_dataset(clips: list[bytes], texts: list[str]) -> object:
    """A dataset with an ``Audio`` column (decoding on, as ``load_dataset`` gives it), made
    without torchcodec: the bytes go in as a struct, then the column is cast."""
    import datasets

    rows = [{"bytes": clip, "path": f"clip{i}.audio"} for i, clip in enumerate(clips)]
    plain = datasets.Dataset.from_dict({"audio": rows, "text": texts})
    return plain.cast_column("audio", datasets.Audio())
