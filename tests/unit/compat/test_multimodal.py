"""The documents' in-memory multimodal datasets over Hugging Face datasets built in-process:
images behind URLs on a local server (some broken), embedded images, audio of several rates;
the documents' DataLoader path, the fast path, the cache, the budget and the report."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tests.media import audio_dataset, flac, jpeg, wav
from torch.utils.data import DataLoader

import loadwise
from loadwise import (
    InMemoryAudioTextDataset,
    InMemoryImageTextDataset,
    collate_in_memory_audio,
    collate_in_memory_images,
)
from loadwise.access.budget import available_memory
from loadwise.errors import ConfigError, SourceError
from loadwise.sources import FetchOptions
from loadwise.testing.server import MediaServer

datasets = pytest.importorskip("datasets")
#: The 503 not retried (these tests count failures, not backoff); the default timeouts, since
#: forked workers on a loaded machine took over the 1 s deadline a tighter option set.
NO_RETRY = FetchOptions(retries=0)
BROKEN = {3: "status/404", 5: "status/503", 8: "bytes/2000"}


@pytest.fixture
def server() -> MediaServer:  # type: ignore[misc]
    with MediaServer({f"{i}.jpg": jpeg(i) for i in range(30)}) as running:
        yield running


def _url_dataset(server: MediaServer, count: int = 30) -> object:
    urls = [
        server.url(BROKEN[i]) if i in BROKEN else server.file_url(f"{i}.jpg") for i in range(count)
    ]
    return datasets.Dataset.from_dict(
        {"image_url": urls, "caption": [f"photo {i}" for i in range(count)]}
    )


def test_images_behind_urls_load_once_and_train_through_a_plain_dataloader(
    server: MediaServer,
) -> None:
    dataset = InMemoryImageTextDataset(
        _url_dataset(server), image_size=(24, 32), fetch=NO_RETRY, workers=2
    )
    assert len(dataset) == 30 and dataset.report.valid == 27 and not dataset.report.from_cache
    reasons = {f.reason: f for f in dataset.report.failures}
    assert set(reasons) == {"http 404", "http 503", "not an image"}
    assert reasons["http 503"].examples == (server.url("status/503"),)
    item = dataset[4]
    assert isinstance(item["image"], Image.Image) and item["image"].size == (32, 24)
    assert item["caption"] == "photo 4" and item["valid"]
    placeholder = dataset[3]
    assert not placeholder["valid"] and not np.asarray(placeholder["image"]).any()
    loader = DataLoader(dataset, batch_size=8, shuffle=True, collate_fn=collate_in_memory_images)
    batches = list(loader)
    assert sum(len(b["images"]) for b in batches) == 30
    assert all(isinstance(c, str) for b in batches for c in b["captions"])
    assert sum(not v for b in batches for v in b["valid"]) == 3


def test_the_fast_path_gives_one_uint8_tensor_a_batch(server: MediaServer) -> None:
    dataset = InMemoryImageTextDataset(_url_dataset(server), image_size=16, fetch=NO_RETRY)
    batch = next(iter(loadwise.loader(dataset, 10, shuffle=True, seed=1)))
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (10, 3, 16, 16)
    assert batch["valid"].dtype == torch.bool and len(batch["caption"]) == 10
    assert torch.equal(
        batch["image"][0].permute(1, 2, 0),
        torch.from_numpy(np.array(dataset[int(batch["index"][0])]["image"])),
    )


def test_every_url_is_requested_once(server: MediaServer) -> None:
    """The items prepared before pack's workers start are read as a range of their own: a
    window fetching ahead of them would download what the workers download again."""
    InMemoryImageTextDataset(_url_dataset(server), image_size=8, fetch=NO_RETRY, workers=2)
    assert server.requests == 30


def test_the_second_run_opens_the_cache_without_a_request(server: MediaServer) -> None:
    first = InMemoryImageTextDataset(_url_dataset(server), image_size=16, fetch=NO_RETRY)
    requests = server.requests
    again = InMemoryImageTextDataset(_url_dataset(server), image_size=16, fetch=NO_RETRY)
    assert server.requests == requests and again.report.from_cache
    assert again.report.path == first.report.path and again.report.valid == 27
    other = InMemoryImageTextDataset(_url_dataset(server), image_size=20, fetch=NO_RETRY)
    assert other.report.path != first.report.path and server.requests > requests


def test_a_cache_entry_that_fails_its_checksums_is_packed_again(server: MediaServer) -> None:
    first = InMemoryImageTextDataset(_url_dataset(server), image_size=16, fetch=NO_RETRY)
    shard = sorted(first.report.path.glob("*.arrow"))[0]
    body = bytearray(shard.read_bytes())
    body[len(body) // 2] ^= 0xFF  # what a power loss may leave: cache packs are not fsynced
    shard.write_bytes(bytes(body))
    requests = server.requests
    again = InMemoryImageTextDataset(_url_dataset(server), image_size=16, fetch=NO_RETRY)
    assert not again.report.from_cache and server.requests > requests
    assert np.array_equal(np.asarray(again[4]["image"]), np.asarray(first[4]["image"]))


def test_max_samples_and_an_empty_dataset(server: MediaServer) -> None:
    rows = _url_dataset(server)
    assert (
        len(InMemoryImageTextDataset(rows, max_samples=1_000, image_size=8, fetch=NO_RETRY)) == 30
    )
    assert len(InMemoryImageTextDataset(rows, max_samples=6, image_size=8, fetch=NO_RETRY)) == 6
    empty = datasets.Dataset.from_dict({"image_url": [], "caption": []})
    with pytest.raises(SourceError, match="empty"):
        InMemoryImageTextDataset(empty, image_size=8)


def test_a_budget_too_small_is_refused_before_any_request(server: MediaServer) -> None:
    rows = _url_dataset(server)
    with pytest.raises(ConfigError, match=r"1 samples need about .* not even one sample fits"):
        InMemoryImageTextDataset(rows, max_samples=1, max_memory_usage=1e-12, fetch=NO_RETRY)
    one_mib = 2**20 / available_memory()  # room for 6 samples of 150,536 bytes
    with pytest.raises(
        ConfigError, match=r"30 samples need about 4\.3 MiB .*max_samples to [67]\b"
    ):
        InMemoryImageTextDataset(rows, max_memory_usage=one_mib, fetch=NO_RETRY)
    assert server.requests == 0


def test_embedded_images_cropped_to_keep_their_aspect() -> None:
    wide = Image.new("RGB", (90, 30), (0, 0, 255))
    wide.paste((255, 0, 0), (0, 0, 30, 30))  # red left third, blue elsewhere
    rows = datasets.Dataset.from_dict({"image": [wide, wide], "text": ["wide", "also wide"]})
    cropped = InMemoryImageTextDataset(rows, image_size=(20, 20), resize="crop")
    pixels = np.asarray(cropped[0]["image"])
    assert pixels.shape == (20, 20, 3) and (pixels[..., 2] > 200).all()  # the blue centre
    stretched = InMemoryImageTextDataset(rows, image_size=(20, 20))
    assert (np.asarray(stretched[0]["image"])[:, 2, 0] > 200).all()  # red squeezed in


def test_audio_of_several_rates_becomes_16k_mono_clips() -> None:
    broken = wav(1.0, 8_000)
    clips = [
        flac(1.0, 44_100, 2),
        wav(0.5, 8_000),
        broken[: len(broken) // 2],
        flac(0.25, 16_000, 1),
    ]
    rows = audio_dataset(clips, ["stereo", "low", "cut", "plain"])
    dataset = InMemoryAudioTextDataset(rows, target_sr=16_000)
    lengths = [len(dataset[i]["audio"]) for i in range(4)]
    assert lengths == [16_000, 8_000, 0, 4_000] and dataset[0]["audio"].dtype == np.float32
    assert [dataset[i]["valid"] for i in range(4)] == [True, True, False, True]
    (failure,) = dataset.report.failures
    assert failure.reason == "undecodable audio" and failure.examples == ("clip2.audio",)
    batch = collate_in_memory_audio([dataset[i] for i in range(4)])
    assert [a.ndim for a in batch["audio"]] == [1] * 4 and batch["captions"][1] == "low"
    fast = dataset.get_batch([0, 1, 3])
    assert fast["audio"].shape == (3, 16_000) and fast["audio_lengths"].tolist() == [
        16_000,
        8_000,
        4_000,
    ]


def test_arguments_are_checked(server: MediaServer) -> None:
    rows = _url_dataset(server)
    with pytest.raises(ConfigError, match="on_error"):
        InMemoryImageTextDataset(rows, on_error="ignore")
    with pytest.raises(ConfigError, match="max_samples"):
        InMemoryImageTextDataset(rows, max_samples=0)
    with pytest.raises(ConfigError, match="resize"):
        InMemoryImageTextDataset(rows, resize="fit")
    with pytest.raises(SourceError, match="no caption column"):
        InMemoryImageTextDataset(datasets.Dataset.from_dict({"url": ["x"], "n": [1]}))
    assert server.requests == 0


def test_an_iterable_dataset_loads_into_a_private_entry() -> None:
    rows = [{"image": Image.new("RGB", (12, 10), (i, 0, 0)), "caption": f"c{i}"} for i in range(9)]
    stream = datasets.Dataset.from_list(rows).to_iterable_dataset()
    with pytest.raises(SourceError, match="length="):
        InMemoryImageTextDataset(stream, image_size=8)
    dataset = InMemoryImageTextDataset(stream, max_samples=6, image_size=8)
    assert len(dataset) == 6 and dataset[5]["caption"] == "c5"
    folder = dataset.report.path.parent
    assert folder.exists() and not dataset.report.from_cache
    dataset.close()
    del dataset
    assert not folder.exists()
