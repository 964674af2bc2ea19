"""Hugging Face datasets as sources: built in-process with ``Dataset.from_dict``; images,
image URLs (fetched from a server on 127.0.0.1), audio and text, each proven with the source
contract, plus the columns' roles and what is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.contracts.sources import assert_source_contract
from tests.media import audio_dataset, flac, jpeg, wav

import loadwise
from loadwise.errors import SourceError
from loadwise.format.fields import RaggedField
from loadwise.sources import (
    AudioBytes,
    DecodeOptions,
    FetchOptions,
    HFSource,
    HFStreamSource,
    ImageBytes,
    ImageOptions,
    ImageURL,
    as_source,
    hf_source,
)
from loadwise.sources.failures import MediaError
from loadwise.testing.server import MediaServer

datasets = pytest.importorskip("datasets")


def _images(count: int) -> object:
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "caption": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["cat", "dog", "emu"]),
            "score": datasets.Value("float32"),
        }
    )
    return datasets.Dataset.from_dict(
        {
            "image": [{"bytes": jpeg(i), "path": None} for i in range(count)],
            "caption": [f"picture {i}" for i in range(count)],
            "label": [i % 3 for i in range(count)],
            "score": [i / 4 for i in range(count)],
        },
        features=features,
    )


def test_an_image_caption_dataset_keeps_the_source_contract() -> None:
    source = HFSource(_images(12))
    assert_source_contract(source)
    name, record = next(iter(source))
    assert isinstance(record["image"], ImageBytes) and record["caption"] == "picture 0"
    assert record["score"].dtype == np.float32 and source.categories == {
        "label": ("cat", "dog", "emu")
    }


def test_a_dataset_of_image_urls_keeps_the_source_contract(server: MediaServer) -> None:
    urls = [server.file_url(f"{i}.jpg") for i in range(10)]
    dataset = datasets.Dataset.from_dict({"image_url": urls, "text": [f"t{i}" for i in range(10)]})
    source = HFSource(dataset, fetch=FetchOptions(in_flight=4))
    assert_source_contract(source)
    before = server.requests
    (_, first), *_ = source.records(0, 1)
    assert first["image_url"].data == jpeg(0) and server.requests > before
    options = dict(columns={"picture": "image_url"}, url_columns=["image_url"])
    (_, peeked), *_ = HFSource(dataset, **options).peek(1)
    assert isinstance(peeked["picture"], ImageURL)  # peeking fetches nothing


def test_an_audio_dataset_keeps_the_source_contract() -> None:
    clips = [flac(0.5, 44_100, 2, seed=1), wav(0.5, 8_000, seed=2), flac(0.5, 16_000, 1)]
    source = as_source(audio_dataset(clips, ["a", "b", "c"]))
    assert isinstance(source, HFSource) and source.schema == (RaggedField("audio", "float32"),)
    assert isinstance(next(iter(source))[1]["audio"], AudioBytes)
    assert_source_contract(source)  # clips of one length: pack needs no schema for them


def test_clips_of_different_lengths_pack_with_the_declared_schema(tmp_path: Path) -> None:
    rows = [
        {"array": np.sin(np.arange(n) / 9).tolist(), "sampling_rate": r}
        for n, r in ((8000, 8000), (4410, 44100))
    ]
    source = HFSource(datasets.Dataset.from_dict({"audio": rows, "caption": ["x", "y"]}))
    loadwise.pack(source, tmp_path / "clips", schema=source.schema, progress=False)
    with loadwise.open(tmp_path / "clips", "eager") as packed:
        batch = packed.get_batch([0, 1])
    assert batch["audio_lengths"].tolist() == [16_000, 1_600]
    assert batch["audio"].shape == (2, 16_000) and not batch["audio"][1, 1_600:].any()


def test_pack_takes_the_schema_the_source_declares(tmp_path: Path) -> None:
    clips = [flac(0.5, 44_100, 2), wav(0.25, 8_000)]
    loadwise.pack(audio_dataset(clips, ["a", "b"]), tmp_path / "clips", progress=False)
    batch = loadwise.open(tmp_path / "clips", "eager").get_batch([0, 1])
    assert batch["audio_lengths"].tolist() == [8_000, 4_000]  # clips of two lengths, 16 kHz


def test_an_iterable_dataset_is_read_in_order(tmp_path: Path) -> None:
    stream = _images(9).to_iterable_dataset()
    with pytest.raises(SourceError, match="length="):
        hf_source(stream)
    source = hf_source(stream, length=9)
    assert isinstance(source, HFStreamSource) and not hasattr(source, "records")
    assert "fingerprint" not in source.describe()
    assert_source_contract(source)
    report = loadwise.pack(
        source,
        tmp_path / "s",
        decode=DecodeOptions(image=ImageOptions(size=8)),
        workers=2,
        progress=False,
    )
    assert report.num_samples == 9


def test_columns_are_chosen_and_refused_by_name() -> None:
    dataset = datasets.Dataset.from_dict(
        {"url": ["http://127.0.0.1:9/a.jpg"], "caption": ["a"], "nested": [[1, 2]]}
    )
    source = HFSource(dataset)
    assert set(source.fields) == {"url", "caption"}  # the nested column is left out
    with pytest.raises(SourceError, match="column `nested`.*Leave it out"):
        HFSource(dataset, columns=["nested"])
    with pytest.raises(SourceError, match="no column `missing`"):
        HFSource(dataset, columns=["missing"])
    assert HFSource(dataset, url_columns=[]).fields["url"].role == "text"
    (_, formatted), *_ = HFSource(_images(2).with_format("numpy")).peek(1)
    assert type(formatted["caption"]) is str and isinstance(formatted["image"], ImageBytes)


def test_empty_values_fail_as_missing() -> None:
    dataset = datasets.Dataset.from_dict({"url": ["", None], "caption": [None, "b"]})
    (_, first), (_, second) = HFSource(dataset).peek(2)
    assert first["caption"] == ""
    with pytest.raises(MediaError, match="missing value: `url\\[1\\]`"):
        second["url"].prepare(DecodeOptions())
