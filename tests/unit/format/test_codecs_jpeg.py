"""The fast JPEG path (simplejpeg) gives Pillow's pixels, and stays strict."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from loadwise.errors import SourceError
from loadwise.format import codecs


def _jpeg(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "JPEG", quality=90)
    return out.getvalue()


def _pillow(data: bytes, mode: str | None) -> np.ndarray:
    image = codecs._to_mode(Image.open(io.BytesIO(data)), mode)
    array = np.asarray(image)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


@pytest.fixture
def color() -> bytes:
    rng = np.random.default_rng(0)
    smooth = np.cumsum(rng.integers(0, 9, size=(48, 40, 3)), axis=1) % 256
    return _jpeg(smooth.astype(np.uint8))


@pytest.mark.parametrize("mode", [None, "RGB", "L"])
def test_fast_path_matches_pillow_pixel_for_pixel(color: bytes, mode: str | None) -> None:
    pytest.importorskip("simplejpeg")
    decoded = codecs.decode_image(color, mode=mode)
    assert decoded.flags.c_contiguous
    np.testing.assert_array_equal(decoded, _pillow(color, mode))


@pytest.mark.parametrize("mode", [None, "RGB", "L"])
def test_grayscale_jpeg_matches_pillow(mode: str | None) -> None:
    gray = _jpeg(np.arange(30 * 20, dtype=np.uint8).reshape(30, 20))
    np.testing.assert_array_equal(codecs.decode_image(gray, mode=mode), _pillow(gray, mode))


def test_truncated_jpeg_is_a_source_error(color: bytes) -> None:
    with pytest.raises(SourceError, match="sample 7"):
        codecs.decode_image(color[: len(color) // 2], name="sample 7")


def test_bomb_limit_applies_to_the_fast_path(color: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(SourceError, match="bomb"):
        codecs.decode_image(color)


def test_without_simplejpeg_pillow_decodes(color: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codecs, "_simplejpeg", lambda: None)
    np.testing.assert_array_equal(codecs.decode_image(color), _pillow(color, None))


def test_decode_batch_matches_one_by_one(color: bytes) -> None:
    pytest.importorskip("simplejpeg")
    gray = _jpeg(np.arange(48 * 40, dtype=np.uint8).reshape(48, 40))
    for mode, datas in ((None, [color, color]), ("RGB", [color, gray]), ("L", [gray, gray])):
        batch = codecs.decode_batch(datas, mode=mode, names=["a", "b"])
        assert batch is not None
        expected = np.stack([codecs.decode_image(d, mode=mode) for d in datas])
        np.testing.assert_array_equal(batch, expected)


def test_decode_batch_declines_what_it_cannot_do_alike(color: bytes) -> None:
    png = io.BytesIO()
    Image.new("RGB", (40, 48)).save(png, "PNG")
    small = _jpeg(np.zeros((8, 8, 3), dtype=np.uint8))
    assert codecs.decode_batch([color, png.getvalue()], mode=None, names=["a", "b"]) is None
    assert codecs.decode_batch([color, small], mode=None, names=["a", "b"]) is None
    assert codecs.decode_batch([color], mode="L", names=["a"]) is None  # Pillow's luma
    gray = _jpeg(np.zeros((48, 40), dtype=np.uint8))
    assert codecs.decode_batch([gray, color], mode="L", names=["a", "b"]) is None  # 2nd: luma


def test_decode_batch_names_a_damaged_sample(color: bytes) -> None:
    pytest.importorskip("simplejpeg")
    broken = color[:-200]
    with pytest.raises(SourceError, match="sample 3"):
        codecs.decode_batch([color, broken], mode=None, names=["sample 2", "sample 3"])
