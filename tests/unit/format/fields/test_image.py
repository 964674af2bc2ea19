"""Batch decoding of encoded images: the same pixels with any number of threads, errors
that name the sample."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from loadwise.errors import SourceError
from loadwise.format.codecs import decode_image
from loadwise.format.fields import ImageField
from loadwise.format.fields import image as decode
from loadwise.gather import threads as parallel

SPEC = ImageField("image", mode="RGB")


def _encoded(fmt: str, count: int, size: tuple[int, int] = (40, 48)) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        array = (np.cumsum(rng.integers(0, 9, (*size, 3)), axis=1) % 256).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, fmt)
        out.append(buffer.getvalue())
    return out


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])  # the batch path, the per-image path
def test_threads_give_the_pixels_of_one_by_one_decoding(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _encoded(fmt, 37)
    want = np.stack([decode_image(b, mode="RGB") for b in raw])
    for threads in ("1", "3"):
        monkeypatch.setenv(parallel.THREADS_ENV, threads)
        got = decode.decode_images(SPEC, raw, np.arange(37))
        assert got.shape == (37, 3, 40, 48) and got.dtype == torch.uint8
        np.testing.assert_array_equal(got.numpy(), want)


def test_a_damaged_image_among_threads_names_its_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parallel.THREADS_ENV, "2")
    raw = _encoded("JPEG", 8)
    raw[6] = raw[6][: len(raw[6]) // 3]
    with pytest.raises(SourceError, match="sample 106 field `image`"):
        decode.decode_images(SPEC, raw, np.arange(100, 108))


def test_sizes_that_differ_come_back_as_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parallel.THREADS_ENV, "2")
    raw = _encoded("JPEG", 2) + _encoded("JPEG", 1, size=(20, 24))
    got = decode.decode_images(SPEC, raw, np.arange(3))
    assert [tuple(t.shape) for t in got] == [(3, 40, 48), (3, 40, 48), (3, 20, 24)]
