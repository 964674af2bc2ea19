"""Issue 18: images keep their bit depth (16-bit and float are not clipped to 8 bits), convert
only when asked and then by scaling, and come out upright (EXIF orientation applied)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import loadwise
from loadwise.cli.main import main
from loadwise.errors import SourceError
from loadwise.format.codecs import decode_image
from loadwise.format.exif import jpeg_orientation
from loadwise.format.reader import load_manifest

RAMP16 = (np.arange(32 * 24, dtype=np.uint32).reshape(32, 24) * 85).astype(np.uint16)  # 0-65195
FLOATS = np.linspace(0, 1, 32 * 24, dtype=np.float32).reshape(32, 24)


def _saved(array: np.ndarray, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, fmt, **options)
    return out.getvalue()


@pytest.fixture
def deep_tree(tmp_path: Path) -> Path:
    """``a/`` holds 16-bit PNGs, ``b/`` float TIFFs (what microscopes and depth maps write)."""
    for c in ("a", "b"):
        (tmp_path / "tree" / c).mkdir(parents=True)
    for i in range(3):
        (tmp_path / "tree" / "a" / f"{i}.png").write_bytes(_saved(RAMP16 + i, "PNG"))
        (tmp_path / "tree" / "b" / f"{i}.tif").write_bytes(_saved(FLOATS * (i + 1) / 3, "TIFF"))
    return tmp_path / "tree"


def test_sixteen_bit_and_float_images_keep_their_depth() -> None:
    sixteen = decode_image(_saved(RAMP16, "PNG"))
    assert sixteen.dtype == np.uint16 and np.array_equal(sixteen[0], RAMP16)
    floats = decode_image(_saved(FLOATS, "TIFF"))
    assert floats.dtype == np.float32 and np.array_equal(floats[0], FLOATS)
    halved = decode_image(_saved(RAMP16, "PNG"), size=(16, 12))
    assert halved.dtype == np.uint16 and halved.shape == (1, 16, 12)
    assert halved.min() > 0 and halved.max() > 60_000  # interpolated at full depth


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_a_mode_asked_scales_deep_images_and_never_clips(mode: str) -> None:
    scaled = decode_image(_saved(RAMP16, "PNG"), mode=mode)
    expected = np.rint(RAMP16.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert scaled.dtype == np.uint8 and scaled.shape[0] == (1 if mode == "L" else 3)
    assert np.array_equal(scaled[0], expected)
    assert len(np.unique(scaled)) > 200  # Pillow's convert("L") gave two values: 0 and 255
    from_float = decode_image(_saved(FLOATS, "TIFF"), mode=mode)
    assert np.array_equal(from_float[0], np.rint(FLOATS * 255).astype(np.uint8))


def test_values_no_fixed_scale_maps_without_clipping_are_refused() -> None:
    with pytest.raises(SourceError, match=r"`f\.tif` to 8 bits.*float values in \[0, 3\]"):
        decode_image(_saved(FLOATS * 3, "TIFF"), mode="L", name="f.tif")
    wide = np.array([[0, 70_000]], dtype=np.int32)
    with pytest.raises(SourceError, match=r"integer values in \[0, 70000\]"):
        decode_image(_saved(wide, "TIFF"), mode="L")
    assert decode_image(_saved(wide, "TIFF")).dtype == np.int32  # kept, with no mode asked


def test_pack_keeps_depth_and_info_says_what_was_done(
    deep_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SourceError, match=r"has dtype float32.*first sample .* uint16"):
        loadwise.pack(deep_tree, tmp_path / "mixed", progress=False)  # depths differ: refused
    kept = tmp_path / "kept"
    (tmp_path / "only16" / "a").mkdir(parents=True)
    for p in (deep_tree / "a").iterdir():
        (tmp_path / "only16" / "a" / p.name).write_bytes(p.read_bytes())
    loadwise.pack(tmp_path / "only16", kept, progress=False)
    with loadwise.open(kept, "lazy") as data:
        images = data.get_batch([0, 1, 2])["image"]
        assert str(images.dtype) == "torch.uint16"
        assert images[0, 0].numpy().tolist() == RAMP16.tolist()
    scaled = tmp_path / "scaled"
    loadwise.pack(deep_tree, scaled, image_mode="L", progress=False)
    with loadwise.open(scaled, "lazy") as data:
        assert str(data.get_batch([0])["image"].dtype) == "torch.uint8"
    assert "keep their depth" in load_manifest(kept).source["images"]
    assert main(["info", str(scaled)]) == 0
    out = capsys.readouterr().out
    assert "images: decoded to L" in out and "scaled to 8 bits" in out and "never clipped" in out
    assert "EXIF orientation applied" in out


def test_deep_images_are_not_kept_encoded_without_a_mode(deep_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"uint16 \(16-bit\).*image_mode='L'"):
        loadwise.pack(deep_tree, tmp_path / "e", encoded=True, progress=False)
    loadwise.pack(deep_tree, tmp_path / "e", encoded=True, image_mode="L", progress=False)
    with loadwise.open(tmp_path / "e", "lazy") as data:
        first = data.get_batch([0])["image"][0, 0].numpy()
    assert np.array_equal(first, np.rint(RAMP16.astype(np.float64) * 255 / 65535).astype(np.uint8))


def _oriented(orientation: int, fmt: str) -> bytes:
    """A 20x40 image, left half white, stored sideways with EXIF orientation ``orientation``."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255
    pixels[:3, :3] = (255, 0, 0)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow_exif_transpose(fmt: str, orientation: int) -> None:
    data = _oriented(orientation, fmt)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    decoded = decode_image(data)
    assert decoded.shape == (3, *expected.shape[:2])
    assert np.abs(decoded.transpose(1, 2, 0).astype(int) - expected).max() <= 2
    if fmt == "JPEG":
        assert jpeg_orientation(data) == orientation
    sized = decode_image(data, size=(10, 6))
    assert sized.shape == (3, 10, 6)


def test_a_rotated_jpeg_in_a_batch_of_encoded_images_is_upright(tmp_path: Path) -> None:
    (tmp_path / "t" / "c").mkdir(parents=True)
    for i, orientation in enumerate([1, 6, 1, 8]):
        (tmp_path / "t" / "c" / f"{i}.jpg").write_bytes(_oriented(orientation, "JPEG"))
    (tmp_path / "t" / "d").mkdir()
    (tmp_path / "t" / "d" / "x.jpg").write_bytes(_oriented(1, "JPEG"))
    loadwise.pack(tmp_path / "t", tmp_path / "p", encoded=True, progress=False)
    with loadwise.open(tmp_path / "p", "lazy") as data:
        images = data.get_batch([0, 1, 2, 3])["image"]
    assert [tuple(im.shape) for im in images] == [
        (3, 20, 40),
        (3, 40, 20),
        (3, 20, 40),
        (3, 40, 20),
    ]


def _png48(values: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one; the format is simple)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    height, width, _ = values.shape
    rows = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + (chunk(b"IEND", b""))
    )


def test_sixteen_bit_colour_that_pillow_narrows_is_refused_unless_a_mode_is_asked() -> None:
    values = (np.arange(4 * 3 * 3, dtype=np.uint16).reshape(4, 3, 3) * 1500).astype(np.uint16)
    data = _png48(values)
    with pytest.raises(SourceError, match=r"`c\.png` at its depth: it has 16-bit colour"):
        decode_image(data, name="c.png")
    narrowed = decode_image(data, mode="RGB")  # asked: Pillow's 8 bits, the high bytes
    assert np.array_equal(narrowed.transpose(1, 2, 0), (values >> 8).astype(np.uint8))
