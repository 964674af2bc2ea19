"""The URL fetcher: many HTTP requests in flight from one process, each bounded in time and
size, for sources whose images live behind URLs (``urls.py``).

Requests run on one asyncio event loop per process (a daemon thread, started on first use,
a new one in each forked child) through one ``aiohttp`` session, so connections to a host
are reused and hundreds of requests in flight cost no thread each. Every request is bounded:
connect and read timeouts per socket operation, and an overall ``deadline`` per item that
covers the connection, the whole response body, every redirect and retry, so a server that
accepts and never answers, or trickles a byte at a time, costs at most the deadline.
Only ``http``/``https`` are fetched, redirects included (followed here, one hop at a time,
each checked); a response is cut at ``max_bytes``; timeouts and 5xx answers are retried with
exponential backoff, nothing else is.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from loadwise._version import __version__
from loadwise.errors import ConfigError, MissingExtraError
from loadwise.sources.failures import (
    BAD_URL,
    CONNECTION,
    REFUSED_SCHEME,
    TIMEOUT,
    TOO_LARGE,
    TOO_MANY_REDIRECTS,
    MediaError,
)

SCHEMES = ("http", "https")
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 1 << 16


def default_in_flight() -> int:
    """Requests in flight per process by default: 32 per core, 16 to 128 (fetching waits on
    the network, not on cores; the cores decode what arrives)."""
    return max(16, min(128, 32 * (os.cpu_count() or 1)))


@dataclass(frozen=True)
class FetchOptions:
    """How URLs are fetched: ``in_flight`` requests at once per process reading the source;
    ``connect_timeout`` and ``read_timeout`` (seconds per socket operation), ``deadline``
    (seconds for the whole item: connection, body, redirects, retries); responses over
    ``max_bytes`` refused; ``retries`` after a timeout or 5xx answer, the first after
    ``backoff`` seconds, doubling; images with more than ``max_pixels`` refused from their
    header before decoding (Pillow's own limit, ``PIL.Image.MAX_IMAGE_PIXELS``, still
    applies above it); at most ``max_redirects`` hops."""

    in_flight: int = field(default_factory=default_in_flight)
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    deadline: float = 30.0
    max_bytes: int = 32 * 2**20
    retries: int = 2
    backoff: float = 0.5
    max_pixels: int = 89_478_485
    max_redirects: int = 5

    def __post_init__(self) -> None:
        for name in ("in_flight", "max_bytes", "max_pixels"):
            _check(name, getattr(self, name), 1)
        for name in ("retries", "max_redirects"):
            _check(name, getattr(self, name), 0)
        for name in ("connect_timeout", "read_timeout", "deadline", "backoff"):
            value = getattr(self, name)
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or value < 0
                or (value == 0 and name != "backoff")
            ):
                raise ConfigError(
                    f"`{name}` must be a positive number of seconds. Found: {value!r}."
                )


def _check(name: str, value: Any, least: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ConfigError(f"`{name}` must be an integer >= {least}. Found: {value!r}.")


def check_scheme(url: str, via: str | None = None) -> None:
    """Refuse anything but ``http``/``https`` before a byte is sent (``via``: the URL that
    redirected here)."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in SCHEMES:
        return
    if via is not None:
        raise MediaError(
            REFUSED_SCHEME, via, f"redirects to `{url}`; only http and https are fetched."
        )
    raise MediaError(REFUSED_SCHEME, url, "is not an http or https URL; only those are fetched.")


def fetch_bytes(url: str, options: FetchOptions) -> bytes:
    """The body of ``url`` (blocking); ``MediaError`` naming the URL and the reason."""
    return submit(url, options).result()


def submit(url: str, options: FetchOptions) -> Future[bytes]:
    """Start fetching ``url`` on this process's event loop; the future gives its body or
    raises ``MediaError``."""
    return submit_many([(url, options)])[0]


def submit_many(requests: Sequence[tuple[str, FetchOptions]]) -> list[Future[bytes]]:
    """Start fetching every ``(url, options)`` with one wake-up of the event loop (a wake-up
    per request cost ~15% of the fetching thread's time here)."""
    futures: list[Future[bytes]] = [Future() for _ in requests]
    started = []
    for (url, options), future in zip(requests, futures, strict=True):
        try:
            check_scheme(url)
        except MediaError as exc:
            future.set_exception(exc)
            continue
        started.append((url, options, future))
    if started:
        loop = _EventLoop.here()
        loop.loop.call_soon_threadsafe(_start, loop, started)
    return futures


def _start(loop: _EventLoop, requests: list[tuple[str, FetchOptions, Future[bytes]]]) -> None:
    """On the loop: a task per request, its outcome copied to the caller's future, and the
    caller's cancel passed on to the task."""
    for url, options, future in requests:
        if not future.set_running_or_notify_cancel():
            continue
        task = loop.loop.create_task(_fetch(loop.session, url, options))
        task.add_done_callback(functools.partial(_settle, future))
        future.add_done_callback(functools.partial(_cancel_from, loop.loop, task))


def _settle(future: Future[bytes], task: asyncio.Task[bytes]) -> None:
    if future.done():  # cancelled by the caller meanwhile
        return
    if task.cancelled():
        future.cancel()
    elif (error := task.exception()) is not None:
        future.set_exception(error)
    else:
        future.set_result(task.result())


def _cancel_from(
    loop: asyncio.AbstractEventLoop, task: asyncio.Task[bytes], future: Future[bytes]
) -> None:
    if future.cancelled() and not task.done():
        loop.call_soon_threadsafe(task.cancel)


_INHERITED: list[_EventLoop] = []


class _EventLoop:
    """This process's fetching loop, thread and HTTP session; forked children make their own."""

    _current: _EventLoop | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        aiohttp = _aiohttp()
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="loadwise-fetch", daemon=True
        )
        self.thread.start()

        async def open_session() -> Any:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            return aiohttp.ClientSession(
                connector=connector,
                trust_env=False,  # proxies and .netrc from the environment are not consulted
                headers={"User-Agent": f"loadwise/{__version__}"},
            )

        self.session = asyncio.run_coroutine_threadsafe(open_session(), self.loop).result()

    @classmethod
    def here(cls) -> _EventLoop:
        """The loop of this process, started on first use (and anew after a fork)."""
        current = cls._current
        if current is not None and current.pid == os.getpid():
            return current
        with cls._lock:
            if cls._current is None or cls._current.pid != os.getpid():
                if cls._current is not None:  # a parent's, copied by fork: never used, and
                    _INHERITED.append(cls._current)  # kept, or its session warns as it goes
                cls._current = cls()
            return cls._current

    def close(self) -> None:
        """Close the session and stop the loop (at exit, so no 'unclosed session' warning)."""
        if self.pid != os.getpid() or not self.thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.session.close(), self.loop).result(5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


@atexit.register
def _close_at_exit() -> None:
    if _EventLoop._current is not None:
        _EventLoop._current.close()


def _aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError:
        raise MissingExtraError(
            "fetching URLs needs aiohttp: pip install 'loadwise[hf]' (or aiohttp)."
        ) from None
    return aiohttp


class _Retry(Exception):
    """A failure worth another attempt (a timeout, a 5xx answer)."""

    def __init__(self, error: MediaError) -> None:
        super().__init__(str(error))
        self.error = error


async def _fetch(session: Any, url: str, options: FetchOptions) -> bytes:
    """The whole item within ``deadline``: every attempt, redirect and byte of the body."""
    try:
        if _TIMEOUT_SCOPE is None:  # Python 3.10
            return await asyncio.wait_for(_attempts(session, url, options), options.deadline)
        async with _TIMEOUT_SCOPE(options.deadline):  # no second task, unlike wait_for on 3.11
            return await _attempts(session, url, options)
    except asyncio.TimeoutError:
        raise MediaError(
            TIMEOUT, url, f"sent no complete response within the {options.deadline:g} s deadline."
        ) from None


_TIMEOUT_SCOPE = getattr(asyncio, "timeout", None)


async def _attempts(session: Any, url: str, options: FetchOptions) -> bytes:
    for attempt in range(options.retries + 1):
        try:
            return await _follow(session, url, options)
        except _Retry as retry:
            if attempt == options.retries:
                raise retry.error from None
            await asyncio.sleep(options.backoff * 2**attempt)
    raise AssertionError("unreachable")


async def _follow(session: Any, url: str, options: FetchOptions) -> bytes:
    """One attempt: the redirects followed hop by hop, each target's scheme checked."""
    aiohttp = _aiohttp()
    timeout = _timeout(options.connect_timeout, options.read_timeout)
    here = url
    for _ in range(options.max_redirects + 1):
        try:
            async with session.get(here, allow_redirects=False, timeout=timeout) as response:
                if response.status in _REDIRECTS and "Location" in response.headers:
                    from yarl import URL  # aiohttp's own URL type

                    target = str(response.url.join(URL(response.headers["Location"])))
                    check_scheme(target, via=url)
                    here = target
                    continue
                return await _body(response, url, options)
        except aiohttp.ServerTimeoutError as exc:
            raise _Retry(MediaError(TIMEOUT, url, f"timed out ({exc or 'no data'}).")) from None
        except aiohttp.InvalidURL as exc:
            raise MediaError(BAD_URL, url, f"is not a valid URL ({exc}).") from None
        except aiohttp.ClientError as exc:
            raise MediaError(CONNECTION, url, f"failed: {type(exc).__name__}: {exc}.") from None
    raise MediaError(
        TOO_MANY_REDIRECTS, url, f"redirected more than {options.max_redirects} times."
    )


@functools.cache
def _timeout(connect: float, read: float) -> Any:
    """aiohttp's timeout object for these socket timeouts (made once, not per request)."""
    return _aiohttp().ClientTimeout(total=None, sock_connect=connect, sock_read=read)


async def _body(response: Any, url: str, options: FetchOptions) -> bytes:
    """The response body, up to ``max_bytes``; an error status raised as its reason."""
    status = response.status
    if status >= 300:
        error = MediaError(f"http {status}", url, f"answered {status} {response.reason or ''}.")
        raise _Retry(error) if status >= 500 else error
    declared = response.content_length
    if declared is not None and declared > options.max_bytes:
        raise MediaError(TOO_LARGE, url, _too_large(declared, options.max_bytes, "declares"))
    if declared is not None:  # HTTP/1.1 framing: exactly that many bytes are read
        return bytes(await response.read())
    parts, size = [], 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > options.max_bytes:
            raise MediaError(TOO_LARGE, url, _too_large(size, options.max_bytes, "sent over"))
        parts.append(chunk)
    return b"".join(parts)


def _too_large(size: int, cap: int, verb: str) -> str:
    return f"{verb} {size:,} bytes; the cap is {cap:,} (`max_bytes` of FetchOptions)."
