"""How a remote shard's bytes come into the cache: what a fetch may do (``FetchOptions``),
each attempt retried with backoff and its failure named (``retried``, ``StoreError``), and
each block checked against the manifest before it is written to the copy being filled
(``Copy``). ``remote.py`` decides what to fetch and when; this says how a fetch goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import xxhash

from loadwise.errors import ConfigError, IntegrityError, LoadwiseError
from loadwise.stores.cache import cache_error
from loadwise.stores.filesystem import _short
from loadwise.system import write_all

T = TypeVar("T")


class StoreError(LoadwiseError, OSError):
    """Object storage could not be read or written (unreachable, denied, missing bucket);
    names the URL and what to check."""


@dataclass(frozen=True)
class FetchOptions:
    """How shards come from object storage: ``prefetch`` shards read ahead of use, each in
    parts of ``part_bytes`` (rounded to whole checksum blocks), ``parallel`` parts at a time
    per process, each part tried ``retries`` more times after ``backoff`` seconds, doubling.

    The defaults keep a server busy: up to eight shards fetched ahead, four requests in
    flight. Parts are not small: a ranged read costs some servers the whole object (moto's
    S3 served 1 MiB parts of 4 MiB objects at 0.4x the rate of whole objects, here).
    A dead server fails within ``retries + 1`` attempts (fsspec's own retries are turned
    off for S3, and botocore's set to one attempt unless ``storage_options`` say otherwise),
    each bounded by the connect and read timeouts, plus the backoff (1.4 s by default)."""

    prefetch: int = 8
    part_bytes: int = 8 * 2**20
    parallel: int = 4
    retries: int = 3
    backoff: float = 0.2
    #: Read ahead in a helper process (``fetcher.py``) rather than threads of the reader,
    #: so fetching and reading never share one interpreter. Off by default: on this 2-core
    #: machine, with the S3 server on the same cores, it measured no faster than threads.
    helper: bool = False
    #: S3 shards are read over presigned URLs through botocore's urllib3 session
    #: (``direct.py``: a third of s3fs's CPU per byte); False reads them through fsspec,
    #: as every other backend is.
    direct: bool = True

    def __post_init__(self) -> None:
        for name in ("prefetch", "retries"):
            if getattr(self, name) < 0:
                raise ConfigError(f"`{name}` must be >= 0. Found: {getattr(self, name)!r}.")
        for name in ("part_bytes", "parallel"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1. Found: {getattr(self, name)!r}.")


def retried(
    options: FetchOptions,
    url: str,
    start: int | None,
    end: int | None,
    location: str,
    attempt: Callable[[], T],
) -> T:
    """``attempt()`` (reading bytes ``[start, end)`` of ``url``) tried up to ``retries + 1``
    times with backoff; a missing bucket or refused credentials fail at once, as does a
    damaged block or a full cache disk (any ``LoadwiseError``)."""
    last: BaseException | None = None
    for number in range(options.retries + 1):
        if number:
            time.sleep(options.backoff * 2 ** (number - 1))
        try:
            return attempt()
        except FileNotFoundError as exc:
            if "bucket" in str(exc).lower():
                raise refused(location, exc) from None
            raise
        except PermissionError as exc:
            raise refused(location, exc) from None
        except LoadwiseError:
            raise
        except Exception as exc:  # noqa: BLE001  # each backend raises its own
            last = exc
    where = "" if start is None else f" (bytes {start:,}-{end:,})"
    raise StoreError(
        f"reading `{url}`{where} failed {options.retries + 1} times, the last with "
        f"{_short(last)}: the storage is unreachable or failing. Check the endpoint in "
        f"`storage_options` and that the server is up, then retry."
    ) from None


def refused(location: str, exc: BaseException) -> StoreError:
    """The dataset at ``location`` cannot be read at all (``exc``: no such bucket, refused
    credentials), with what to check."""
    return StoreError(
        f"cannot read `{location}`: {_short(exc)}. Check the bucket name and the "
        f"credentials and endpoint in `storage_options`."
    )


@dataclass(frozen=True)
class Copy:
    """The cache copy of shard ``spec`` (of the dataset at ``location``) being filled through
    ``fd``, in the cache at ``root``: blocks are checked, then written."""

    spec: Any
    fd: int
    location: str
    root: Path

    def arrived(self, offset: int, block: memoryview) -> None:
        """One block at ``offset`` came: checked, then written."""
        self.check(offset, block)
        self.write(offset, block)

    def check(self, offset: int, block: memoryview) -> None:
        """``IntegrityError`` naming the shard unless ``block`` (at ``offset``) is the one
        the manifest describes."""
        spec = self.spec
        number = offset // spec.block_bytes
        if xxhash.xxh3_64_hexdigest(block) != spec.block_xxh3[number]:
            a, length = spec.block_span(number)
            raise IntegrityError(
                f"shard `{spec.name}` in `{self.location}` fails its checksum (block "
                f"{number}, bytes {a:,}-{a + length - 1:,}): the object changed after the "
                f"manifest was written; re-run `loadwise pack`, or `loadwise verify "
                f"{self.location}`."
            )

    def write(self, offset: int, data: memoryview) -> None:
        """``data`` into the copy at ``offset``; a full or read-only disk is the cache's
        error (never retried as the storage's)."""
        try:
            write_all(self.fd, data, offset)  # in pieces: see ``system.WRITE_BYTES``
        except OSError as exc:
            raise cache_error(self.root, self.spec.name, exc) from None


__all__ = ["Copy", "FetchOptions", "StoreError", "refused", "retried"]
