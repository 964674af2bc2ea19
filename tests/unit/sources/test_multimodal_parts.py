"""The small parts under the multimodal sources: the resize policy, failure reasons read back
from messages, and the tally that forked readers add to."""

from __future__ import annotations

import io
import multiprocessing
import pickle

import numpy as np
import pytest
from PIL import Image
from tests.media import jpeg

import loadwise
from loadwise.errors import ConfigError
from loadwise.sources import DecodeOptions, ImageBytes, ImageOptions, hf_source
from loadwise.sources.failures import MediaError, count_failures, reason_of
from loadwise.sources.fit import cover_crop
from loadwise.sources.tally import Tally


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_crop_keeps_the_aspect_and_cuts_the_centre() -> None:
    tall = Image.new("RGB", (20, 60), (0, 255, 0))
    tall.paste((255, 0, 0), (0, 0, 20, 20))  # red top third
    crop = ImageOptions(size=(10, 10), mode="RGB", resize="crop")
    pixels = ImageBytes(_png(tall), "tall").prepare(DecodeOptions(image=crop))
    assert pixels.shape == (3, 10, 10) and (pixels[1] > 200).all()  # the green middle
    stretch = ImageBytes(_png(tall), "tall").prepare(DecodeOptions(image=ImageOptions(size=10)))
    assert stretch[0, 0, 0] > 200  # red squeezed into the top
    gray = np.arange(24 * 40, dtype=np.uint8).reshape(1, 24, 40)
    assert cover_crop(gray, (12, 12)).shape == (1, 12, 12)
    assert cover_crop(gray, (24, 40)) is not gray and np.array_equal(
        cover_crop(gray, (24, 40)), gray
    )
    with pytest.raises(ConfigError, match="resize"):
        ImageOptions(size=8, resize="fit")


def test_reasons_are_read_back_from_messages() -> None:
    error = MediaError("http 404", "http://127.0.0.1/a.jpg", "answered 404 Not Found.")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.where, str(copy)) == (error.reason, error.where, str(error))
    assert reason_of(str(error)) == ("http 404", "http://127.0.0.1/a.jpg")
    assert reason_of("cannot decode image `x.png`: broken")[0] == "undecodable image"
    assert reason_of("something else entirely") == ("other", "")
    counted = count_failures([str(error)] * 5 + ["timeout: `u1` slow", "timeout: `u2` slow"], 2)
    assert [(c.reason, c.count, c.examples) for c in counted] == [
        ("http 404", 5, ("http://127.0.0.1/a.jpg",) * 2),
        ("timeout", 2, ("u1", "u2")),
    ]


def _add_in_child(tally: Tally) -> None:
    tally.add(items=3, nbytes=100, failures=1)


def test_a_tally_sums_what_forked_readers_count() -> None:
    tally = Tally()
    tally.add(items=1, nbytes=10)
    children = [
        multiprocessing.get_context("fork").Process(target=_add_in_child, args=(tally,))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
    assert tally.totals() == (7, 210, 2)
    assert pickle.loads(pickle.dumps(tally)).totals() == (0, 0, 0)  # a copy starts empty


def test_pack_workers_count_into_the_sources_tally(tmp_path) -> None:  # type: ignore[no-untyped-def]
    datasets = pytest.importorskip("datasets")
    rows = datasets.Dataset.from_dict(
        {"image": [Image.open(io.BytesIO(jpeg(i))) for i in range(600)], "text": ["t"] * 600}
    )
    source = hf_source(rows)
    loadwise.pack(source, tmp_path / "p", image_size=8, workers=2, progress=False)
    items, nbytes, failures = source.tally.totals()
    assert items >= 600 and nbytes > 600 * 500 and failures == 0
