"""Shard downloads from S3 over presigned URLs, streamed block by block through botocore's
own urllib3 session: the bulk of a cold epoch's bytes without s3fs's per-byte cost.

Why: s3fs runs aiobotocore on aiohttp, which spends about 0.2 s of CPU under the reading
process's GIL to fetch 90 MiB from a local S3 server; a presigned GET through botocore's
``URLLib3Session`` read into one reused buffer per thread spends 0.05-0.065 s for the same
bytes (``benchmarks/distributed.py``). Reading a batch and fetching the next shards share
that GIL, so the client's CPU is what a cold epoch waits on.

What stays s3fs's: credentials, endpoint, region and signing (``fs.sign``, with the
requester-pays parameter), and every other call (manifest, listing, uploads). The HTTP side
follows botocore's rules from the same ``storage_options``: TLS verification
(``client_kwargs["verify"]``, else ``AWS_CA_BUNDLE`` or the profile's ``ca_bundle``),
proxies (``config_kwargs["proxies"]``, else the environment's), timeouts and client
certificates (``config_kwargs``). Datasets whose reads need extra request parameters
(``s3_additional_kwargs``, e.g. SSE-C keys) are read through s3fs, as every other fsspec
backend is.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

#: Seconds a presigned URL is asked to live, and after how many it is signed again.
EXPIRES, RESIGN_AFTER = 3600, 1800

_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")


class DirectReader:
    """Ranged GETs of the objects of one S3 file system (made by ``filesystem``): ``read``
    streams bytes ``[start, end)`` of an object to a callback one block at a time. One per
    process (connections do not survive ``fork``: a child gets its own, ``forked``)."""

    def __init__(
        self, filesystem: Callable[[], Any], options: Mapping[str, Any], connections: int
    ) -> None:
        from loadwise.stores.filesystem import S3_CONFIG

        fs = filesystem()
        self._filesystem = filesystem  # signs URLs not signed yet (``_sign``)
        self._verify = _verify(fs, dict(options.get("client_kwargs") or {}))
        self._config = {**S3_CONFIG, **(options.get("config_kwargs") or {})}
        self._connections = connections
        self._request_params = dict(getattr(fs, "req_kw", {}) or {})
        self._signed: dict[str, tuple[str, float]] = {}
        self._fresh()

    def _fresh(self) -> None:
        """What no two processes may share: connections, locks, buffers."""
        self._http: Any = None  # made at the first request: its proxies depend on the URL
        self._lock = threading.Lock()
        self._buffers = threading.local()

    def forked(self, filesystem: Callable[[], Any]) -> DirectReader:
        """This reader for a forked child: the same settings and signed URLs (a child that
        only reads what its parent signed never makes a file system), its own connections;
        ``filesystem`` makes the child's file system if it must sign."""
        child = object.__new__(DirectReader)
        child.__dict__.update(self.__dict__)
        child._filesystem, child._signed = filesystem, dict(self._signed)
        child._fresh()
        return child

    def signed(self, url: str) -> tuple[str, float]:
        """A presigned address of ``url``, made now or earlier, and when it was made
        (``time.monotonic``, the same clock in every process: hand both to ``remember``)."""
        return self._sign(url, fresh=False)

    def remember(self, url: str, signed: str, made: float) -> None:
        """Use ``signed``, made at ``made`` by ``signed`` in another process, for ``url``."""
        with self._lock:
            self._signed[url] = (signed, made)

    @staticmethod
    def usable(fs: Any, url: str) -> bool:
        """True if ``url``'s objects can be read this way: S3 through s3fs, no extra
        request parameters (SSE-C keys and the like are sent by s3fs only)."""
        protocol = url.split("://", 1)[0]
        return (
            protocol in ("s3", "s3a")
            and hasattr(fs, "sign")
            and not getattr(fs, "s3_additional_kwargs", None)
        )

    def read(
        self,
        url: str,
        start: int,
        end: int,
        block: int,
        arrived: Callable[[int, memoryview], None],
    ) -> None:
        """Bytes ``[start, end)`` of ``url`` handed to ``arrived(offset, view)`` in pieces of
        ``block`` bytes (the last may be shorter); ``view`` is reused after the call.
        Raises ``FileNotFoundError`` (no such object or bucket), ``PermissionError``
        (refused even when signed again) or ``OSError`` (anything worth retrying)."""
        response = self._get(url, start, end)
        raw, done = response.raw, False
        try:
            length = int(response.headers.get("content-length", -1))
            if length != end - start:
                raise OSError(
                    f"the server sent {length:,} bytes for {end - start:,} (status "
                    f"{response.status_code}): it did not honour the byte range"
                )
            buffer = self._buffer(block)
            offset = start
            while offset < end:
                want = min(block, end - offset)
                view = buffer[:want]
                got = 0
                while got < want:
                    n = raw.readinto(view[got:])
                    if not n:
                        raise OSError(
                            f"the connection ended {offset + got - start:,} bytes into "
                            f"{end - start:,}"
                        )
                    got += n
                arrived(offset, view)
                offset += want
            done = True
        finally:
            if done:
                raw.release_conn()
            else:  # half read: the connection cannot be reused
                raw.close()

    def _get(self, url: str, start: int, end: int) -> Any:
        from botocore.awsrequest import AWSRequest

        for fresh in (False, True):
            signed, _ = self._sign(url, fresh)
            request = AWSRequest("GET", signed, headers={"Range": f"bytes={start}-{end - 1}"})
            prepared = request.prepare()
            prepared.stream_output = True
            response = self._send(prepared)
            if response.status_code in (200, 206):
                return response
            body = response.raw.read(4096)
            response.raw.close()
            found = _CODE.search(body)
            code = found.group(1).decode("ascii", "replace") if found else ""
            status = response.status_code
            if status == 403 and not fresh:
                continue  # an expired or revoked signature: sign once more
            if status == 404:
                raise FileNotFoundError(f"{code or 'NoSuchKey'}: {url}")
            if status == 403:
                raise PermissionError(f"{code or 'AccessDenied'} (HTTP 403): {url}")
            raise OSError(f"HTTP {status} {code}".rstrip())
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, prepared: Any) -> Any:
        with self._lock:
            if self._http is None:
                self._http = self._session(prepared.url)
        return self._http.send(prepared)

    def _session(self, url: str) -> Any:
        """botocore's urllib3 session as botocore would configure it for ``url``."""
        from botocore.httpsession import URLLib3Session
        from botocore.utils import get_environ_proxies

        config = self._config
        return URLLib3Session(
            verify=self._verify,
            proxies=config.get("proxies") or get_environ_proxies(url),
            timeout=(config.get("connect_timeout", 60), config.get("read_timeout", 60)),
            max_pool_connections=self._connections,
            client_cert=config.get("client_cert"),
            proxies_config=config.get("proxies_config"),
        )

    def _sign(self, url: str, fresh: bool) -> tuple[str, float]:
        now = time.monotonic()
        with self._lock:
            known = self._signed.get(url)
        if known is not None and not fresh and now - known[1] < RESIGN_AFTER:
            return known
        signed = self._filesystem().sign(url, expiration=EXPIRES, **self._request_params)
        if not str(signed).startswith(("http://", "https://")):
            raise OSError(f"signing `{url}` gave no HTTP address: {signed!r}")
        with self._lock:
            self._signed[url] = (str(signed), now)
        return str(signed), now

    def _buffer(self, block: int) -> memoryview:
        buffer = getattr(self._buffers, "view", None)
        if buffer is None or len(buffer) < block:
            buffer = self._buffers.view = memoryview(bytearray(block))
        return buffer


def _verify(fs: Any, client: Mapping[str, Any]) -> bool | str:
    """TLS verification as botocore decides it: the client's ``verify``, else a CA bundle
    from ``AWS_CA_BUNDLE`` or the profile (botocore's ``ca_bundle`` setting), else on."""
    verify: bool | str | None = client.get("verify")
    if verify is not None:
        return verify
    session = getattr(fs, "session", None)
    try:
        bundle = session.get_config_variable("ca_bundle") if session is not None else None
    except Exception:  # noqa: BLE001  # a session that cannot say: botocore's default
        bundle = None
    return bundle or os.environ.get("AWS_CA_BUNDLE") or True
