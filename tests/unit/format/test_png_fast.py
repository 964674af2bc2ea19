"""Plain 8-bit PNGs decode through libspng to exactly Pillow's pixels; others stay Pillow's."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from loadwise.errors import SourceError
from loadwise.format import codecs, spng


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _pillow(data: bytes, mode: str) -> np.ndarray:
    array = np.asarray(Image.open(io.BytesIO(data)).convert(mode))
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


rng = np.random.default_rng(7)
GRAY = _png(Image.fromarray(rng.integers(0, 256, (21, 33), dtype=np.uint8)))
RGB = _png(Image.fromarray(rng.integers(0, 256, (21, 33, 3), dtype=np.uint8)))
PALETTE = _png(Image.fromarray(rng.integers(0, 256, (21, 33, 3), dtype=np.uint8)).quantize(16))


CASES = [(GRAY, "L"), (GRAY, None), (RGB, "RGB"), (RGB, None), (RGB, "L"), (PALETTE, "RGB"),
         (GRAY, "RGB")]  # fmt: skip


@pytest.mark.parametrize(("data", "mode"), CASES)
def test_same_pixels_as_pillow(data: bytes, mode: str | None) -> None:
    expected = _pillow(data, mode or ("L" if data is GRAY else "RGB"))
    assert np.array_equal(codecs.decode_image(data, mode=mode), expected)


def test_only_plain_pngs_take_the_fast_path() -> None:
    assert codecs._png_header(GRAY) == (21, 33, "L")
    assert codecs._png_header(RGB) == (21, 33, "RGB")
    assert codecs._png_header(PALETTE) == (21, 33, None)  # palette: Pillow converts it
    assert codecs._png_header(b"\xff\xd8\xff" + bytes(40)) is None


def test_a_batch_of_pngs_decodes_into_one_buffer() -> None:
    datas = [GRAY, memoryview(GRAY), GRAY]
    out = codecs.decode_batch(datas, mode="L", names=["a", "b", "c"])
    assert out is not None and out.shape == (3, 1, 21, 33)
    assert all(np.array_equal(out[i], _pillow(GRAY, "L")) for i in range(3))
    assert codecs.decode_batch([GRAY, RGB], mode=None, names=["a", "b"]) is None  # unlike


def _verdict(data: bytes) -> np.ndarray | str:
    try:
        return codecs.decode_image(data, mode="L", name="sample 9")
    except SourceError as exc:
        assert "sample 9" in str(exc)
        return "refused"


def test_a_damaged_png_gets_pillows_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyspng.load decodes damaged files silently; libspng with its checks on refuses them and
    they go to Pillow, so a damaged PNG gets the verdict it gets without pyspng (today: decoded, as
    `exif.orientation` makes Pillow lenient; see NOTES.md)."""
    zeroed = GRAY[:60] + bytes(len(GRAY) - 60)
    flipped = bytearray(GRAY)
    flipped[100] ^= 0xFF
    damaged = [zeroed, bytes(flipped), GRAY[:-20]]
    out = np.empty((21, 33, 1), np.uint8)
    lib = spng.library()
    assert all(spng.decode_into(lib, d, out, "L") for d in damaged)  # each refused: a reason
    assert spng.decode_into(lib, GRAY, out, "L") is None
    ours = [_verdict(d) for d in damaged]
    # a batch holding one goes one by one, where Pillow decides
    assert codecs.decode_batch([GRAY, zeroed], mode="L", names=["sample 3", "sample 4"]) is None
    monkeypatch.setattr(spng, "library", lambda: None)
    pillows = [_verdict(d) for d in damaged]
    for a, b in zip(ours, pillows, strict=True):
        assert (a == b) if isinstance(a, str) else np.array_equal(a, b)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    at, out = 8, []
    while at < len(png):
        (length,) = struct.unpack_from(">I", png, at)
        out.append((png[at + 4 : at + 8], png[at + 8 : at + 8 + length]))
        at += 12 + length
    return out


def test_a_broken_stream_with_right_crcs_gets_pillows_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Damage before the CRCs were written: only the zlib stream's Adler-32 tells."""
    parts = _chunks(GRAY)
    idat = bytearray(next(d for k, d in parts if k == b"IDAT"))
    idat[-2] ^= 0x55  # inside the Adler-32
    broken = GRAY[:8] + b"".join(_chunk(k, bytes(idat) if k == b"IDAT" else d) for k, d in parts)
    out = np.empty((21, 33, 1), np.uint8)
    assert spng.decode_into(spng.library(), broken, out, "L") == "IDAT stream error"
    views = [memoryview(GRAY), memoryview(broken)]
    assert codecs.decode_batch(views, mode="L", names=["sample 1", "sample 2"]) is None
    ours = _verdict(broken)
    monkeypatch.setattr(spng, "library", lambda: None)
    pillows = _verdict(broken)
    assert (ours == pillows) if isinstance(ours, str) else np.array_equal(ours, pillows)


def test_a_png_with_exif_is_turned_upright_in_a_batch_too() -> None:
    """An eXIf chunk (orientation 6: turn) sends the image to Pillow, from bytes or from
    the memoryviews a batch reads (a substring test missed it in those)."""
    exif_6 = b"MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06" + bytes(6)
    parts = _chunks(GRAY)
    turned = GRAY[:8] + b"".join(_chunk(k, d) for k, d in [parts[0], (b"eXIf", exif_6), *parts[1:]])
    upright = codecs.decode_image(turned, mode="L")
    assert upright.shape == (1, 33, 21)
    assert codecs.decode_batch([memoryview(turned)] * 2, mode="L", names=["a", "b"]) is None
