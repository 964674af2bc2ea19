"""The URL fetcher against a real HTTP server on 127.0.0.1: every broken answer becomes a
``MediaError`` naming the URL and its reason, bounded in time; nothing else is contacted."""

from __future__ import annotations

import time

import numpy as np
import pytest
from tests.media import jpeg, png_bomb

from loadwise.errors import ConfigError, SourceError
from loadwise.sources import DecodeOptions, FetchOptions, ImageOptions, ImageURL
from loadwise.sources.failures import MediaError, reason_of
from loadwise.sources.fetch import fetch_bytes
from loadwise.sources.urls import prefetched
from loadwise.testing.server import MediaServer

FAST = FetchOptions(connect_timeout=1, read_timeout=0.5, deadline=1.5, retries=1, backoff=0.05)
RGB = DecodeOptions(image=ImageOptions(size=(16, 16), mode="RGB"))


def _reason(url: str, options: FetchOptions = FAST) -> str:
    with pytest.raises(MediaError) as caught:
        ImageURL(url, options).prepare(RGB)
    assert url in str(caught.value)
    assert reason_of(str(caught.value))[0] == caught.value.reason
    return caught.value.reason


def test_an_image_is_fetched_and_decoded(server: MediaServer) -> None:
    assert fetch_bytes(server.file_url("3.jpg"), FAST) == jpeg(3)
    pixels = ImageURL(server.file_url("3.jpg"), FAST).prepare(RGB)
    assert pixels.shape == (3, 16, 16) and pixels.dtype == np.uint8


def test_404_and_500_answers_are_failures_and_only_5xx_is_retried(server: MediaServer) -> None:
    before = server.requests
    assert _reason(server.url("status/404")) == "http 404"
    assert server.requests - before == 1
    assert _reason(server.url("status/500")) == "http 500"
    assert server.requests - before == 1 + 2  # one retry (retries=1)


def test_a_server_that_never_answers_costs_the_deadline(server: MediaServer) -> None:
    started = time.perf_counter()
    assert _reason(server.url("hang")) == "timeout"
    assert time.perf_counter() - started < FAST.deadline + 0.5


def test_a_trickling_body_is_cut_at_the_deadline_not_per_read(server: MediaServer) -> None:
    # one byte every 0.2 s never trips the 0.5 s read timeout: only the deadline ends it
    started = time.perf_counter()
    assert _reason(server.url("trickle")) == "timeout"
    assert time.perf_counter() - started < FAST.deadline + 0.5


def test_a_response_over_the_byte_cap_is_refused(server: MediaServer) -> None:
    capped = FetchOptions(max_bytes=100_000, deadline=5)
    assert _reason(server.url("bytes/300000"), capped) == "too large"  # declared length
    assert _reason(server.url("bytes/300000?length=no"), capped) == "too large"  # streamed
    assert len(fetch_bytes(server.url("bytes/100000"), capped)) == 100_000


def test_bytes_that_are_not_an_image(server: MediaServer) -> None:
    assert _reason(server.url("bytes/5000")) == "not an image"


def test_a_png_declaring_50000_by_50000_pixels_is_refused_from_its_header() -> None:
    with MediaServer({"bomb.png": png_bomb()}) as bombs:
        started = time.perf_counter()
        assert _reason(bombs.file_url("bomb.png")) == "too many pixels"
        assert time.perf_counter() - started < 1  # never decoded
        small = FetchOptions(max_pixels=100)
        with MediaServer({"a.jpg": jpeg(1)}) as plain:
            assert _reason(plain.file_url("a.jpg"), small) == "too many pixels"


def test_a_redirect_to_file_or_another_scheme_is_refused(server: MediaServer) -> None:
    before = server.requests
    assert _reason(server.url("redirect?to=file:///etc/passwd")) == "refused scheme"
    assert _reason("ftp://127.0.0.1/a.jpg") == "refused scheme"
    assert _reason("file:///etc/hostname") == "refused scheme"
    assert server.requests - before == 1  # the redirect itself; nothing was sent elsewhere
    followed = server.url(f"redirect?to={server.file_url('5.jpg')}")
    assert fetch_bytes(followed, FAST) == jpeg(5)


def test_a_refused_connection_fails_at_once() -> None:
    with MediaServer() as gone:
        url = gone.file_url("a.jpg")
    assert _reason(url) == "connection failed"


def test_prefetching_keeps_order_and_bounds_requests_in_flight() -> None:
    files = {f"{i}.jpg": jpeg(i) for i in range(60)}
    with MediaServer(files, latency=0.05) as slow:
        records = [
            (str(i), {"image": ImageURL(slow.file_url(f"{i}.jpg"), FAST), "n": i})
            for i in range(60)
        ]
        records[7] = ("7", {"image": ImageURL(slow.url("status/404"), FAST), "n": 7})
        started = time.perf_counter()
        out = list(prefetched(records, in_flight=8))
        seconds = time.perf_counter() - started
    assert [name for name, _ in out] == [str(i) for i in range(60)]
    assert [r["n"] for _, r in out] == list(range(60))
    assert out[3][1]["image"].data == jpeg(3)
    with pytest.raises(MediaError, match="http 404"):
        out[7][1]["image"].prepare(RGB)
    assert 2 <= slow.most_in_flight <= 8
    assert seconds < 60 * 0.05 / 2  # concurrent: far below one request after another


def test_fetch_options_are_checked() -> None:
    for bad in ({"in_flight": 0}, {"deadline": 0}, {"max_bytes": -1}, {"retries": 1.5}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            FetchOptions(**bad)  # type: ignore[arg-type]
    assert issubclass(MediaError, SourceError)
