"""Images behind URLs: the ``ImageURL`` media value, and the window that fetches a stream of
records' URLs concurrently while keeping their order.

A source yields ``ImageURL(url, options)``; reading it through ``prefetched`` starts up to
``in_flight`` requests ahead of the record being handed out (``fetch.py`` runs them), so
while ``pack`` decodes one image the next ones download. Each record comes out in source
order with its URLs replaced by ``Downloaded`` bytes or a ``NotDownloaded`` failure, which
``prepare`` turns into pixels or the ``MediaError`` that ``on_error`` then handles. Read
without the window, an ``ImageURL`` is fetched by ``prepare`` itself, one at a time.
"""

from __future__ import annotations

import io
import itertools
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, UnidentifiedImageError

from loadwise.errors import SourceError
from loadwise.format.codecs import _JPEG_MAGIC, _simplejpeg
from loadwise.sources.failures import (
    NOT_AN_IMAGE,
    TOO_MANY_PIXELS,
    UNDECODABLE_IMAGE,
    MediaError,
)
from loadwise.sources.fetch import FetchOptions, fetch_bytes, submit_many
from loadwise.sources.fit import fitted_image
from loadwise.sources.media import DecodeOptions, Media
from loadwise.sources.tally import Tally

#: Records fetched ahead of the one handed out, at most, per request in flight: enough that
#: a slow item at the head does not stop the others from downloading behind it.
_BUFFER_PER_REQUEST = 4


@dataclass(frozen=True)
class ImageURL(Media):
    """An image at an ``http``/``https`` URL, fetched as ``options`` say, then decoded."""

    url: str
    options: FetchOptions = field(default_factory=FetchOptions)

    def prepare(self, decode: DecodeOptions) -> Any:
        """Fetched here (one at a time: read through ``prefetched`` to fetch concurrently)."""
        data = fetch_bytes(self.url, self.options)
        return Downloaded(self.url, data, self.options.max_pixels).prepare(decode)


@dataclass(frozen=True)
class Downloaded(Media):
    """The body an ``ImageURL`` answered, checked and decoded by ``prepare``."""

    url: str
    data: bytes
    max_pixels: int

    def prepare(self, decode: DecodeOptions) -> Any:
        check_image_header(self.data, self.url, self.max_pixels)
        try:
            return fitted_image(self.data, self.url, decode.image)
        except MediaError:
            raise
        except SourceError as exc:
            raise MediaError(UNDECODABLE_IMAGE, self.url, f"does not decode: {exc}") from exc


@dataclass(frozen=True)
class NotDownloaded(Media):
    """An ``ImageURL`` whose fetch failed; ``prepare`` raises the failure."""

    error: MediaError

    def prepare(self, decode: DecodeOptions) -> Any:
        raise self.error


def check_image_header(data: bytes, where: str, max_pixels: int) -> None:
    """Refuse bytes that are not an image, or an image of more than ``max_pixels``, reading
    only the header (a decompression bomb is never decoded)."""
    size = _jpeg_size(data)
    if size is not None:
        height, width = size
    else:
        width, height = _any_size(data, where)
    if width * height > max_pixels:
        raise MediaError(
            TOO_MANY_PIXELS,
            where,
            f"declares {width:,} x {height:,} pixels, over the limit of {max_pixels:,} "
            f"(`max_pixels` of FetchOptions); refused before decoding.",
        )


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Height and width of a JPEG from its header with simplejpeg (~50x faster than opening
    it with Pillow, which parses every marker); None for other bytes or a bad header, which
    Pillow then names."""
    if data[:3] != _JPEG_MAGIC:
        return None
    fast = _simplejpeg()
    if fast is None:
        return None
    try:
        height, width, _, _ = fast.decode_jpeg_header(data)
    except ValueError:
        return None
    return int(height), int(width)


def _any_size(data: bytes, where: str) -> tuple[int, int]:
    """Width and height of any image Pillow opens, from its header."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # counted below
            width, height = Image.open(io.BytesIO(data)).size
    except Image.DecompressionBombError as exc:
        raise MediaError(TOO_MANY_PIXELS, where, f"is refused from its header: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        found = data[:16]
        raise MediaError(
            NOT_AN_IMAGE,
            where,
            f"answered {len(data):,} bytes that are not an image ({found!r}...).",
        ) from exc
    return int(width), int(height)


Record = dict[str, Any]
_Pending = tuple[str, Record, dict[str, Future[bytes]]]


def prefetched(
    records: Iterable[tuple[str, Record]], in_flight: int, tally: Tally | None = None
) -> Iterator[tuple[str, Record]]:
    """``records`` in order, their ``ImageURL`` values fetched with up to ``in_flight``
    requests at once (and up to 4x as many records buffered behind a slow one).

    Closing the iterator early cancels what is still in flight.
    """
    source = iter(records)
    window: deque[_Pending] = deque()
    running: set[Future[bytes]] = set()
    try:
        while True:
            running = {f for f in running if not f.done()}
            _fill(source, window, running, in_flight)
            if not window:
                return
            item, record, futures = window[0]
            if all(f.done() for f in futures.values()):
                window.popleft()
                yield item, _resolved(record, futures, tally)
            else:
                wait(running, return_when=FIRST_COMPLETED)
    finally:
        for future in running:
            future.cancel()


def _fill(
    source: Iterator[tuple[str, Record]],
    window: deque[_Pending],
    running: set[Future[bytes]],
    in_flight: int,
) -> None:
    """Start fetches for the next records while requests and the buffer have room, a
    quarter of ``in_flight`` at least (one wake-up of the fetching loop per batch)."""
    room = min(in_flight - len(running), _BUFFER_PER_REQUEST * in_flight - len(window))
    if room < max(1, in_flight // 4) and window:
        return
    batch = list(itertools.islice(source, max(room, 0)))
    urls = [
        (item, k, v) for item, record in batch for k, v in record.items() if isinstance(v, ImageURL)
    ]
    started = submit_many([(v.url, v.options) for _, _, v in urls])
    futures: dict[str, dict[str, Future[bytes]]] = {item: {} for item, _ in batch}
    for (item, key, _), future in zip(urls, started, strict=True):
        futures[item][key] = future
    for item, record in batch:
        running.update(futures[item].values())
        window.append((item, record, futures[item]))


def _resolved(
    record: Mapping[str, Any], futures: Mapping[str, Future[bytes]], tally: Tally | None
) -> Record:
    """The record with each fetched URL replaced by its bytes or its failure."""
    out = dict(record)
    for name, future in futures.items():
        url = record[name]
        try:
            data = future.result()
        except MediaError as exc:
            out[name] = NotDownloaded(exc)
            if tally is not None:
                tally.add(failures=1)
            continue
        out[name] = Downloaded(url.url, data, url.options.max_pixels)
        if tally is not None:
            tally.add(nbytes=len(data))
    return out
