"""Plain 8-bit PNGs decode through libspng to exactly Pillow's pixels; others stay Pillow's."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from loadwise.errors import SourceError
from loadwise.format import codecs


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
    """libspng decodes damaged files silently; a failed CRC or zlib check sends them to
    Pillow, so a damaged PNG gets the verdict it gets without pyspng (today: decoded, as
    `exif.orientation` makes Pillow lenient; see NOTES.md)."""
    zeroed = GRAY[:60] + bytes(len(GRAY) - 60)
    flipped = bytearray(GRAY)
    flipped[100] ^= 0xFF
    damaged = [zeroed, bytes(flipped), GRAY[:-20]]
    assert not any(codecs._png_intact(d) for d in damaged)
    assert codecs._png_intact(GRAY) and codecs._png_intact(RGB)
    ours = [_verdict(d) for d in damaged]
    # a batch holding one goes one by one, where Pillow decides
    assert codecs.decode_batch([GRAY, zeroed], mode="L", names=["sample 3", "sample 4"]) is None
    monkeypatch.setattr(codecs, "_pyspng", lambda: None)
    pillows = [_verdict(d) for d in damaged]
    for a, b in zip(ours, pillows, strict=True):
        assert (a == b) if isinstance(a, str) else np.array_equal(a, b)
