"""``DirectReader`` against a small HTTP server on 127.0.0.1 that answers as S3 does (or
misbehaves on purpose): byte ranges, refused signatures signed again, errors mapped to the
exceptions ``RemoteStore`` retries or reports, connections cut mid-body."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from loadwise.stores.direct import DirectReader

BODY = bytes(range(256)) * 40  # 10,240 bytes


class _Server:
    """Serves ``BODY`` at any path; ``script`` lists what the next requests get (one per
    request: ``"ok"``, ``"403"``, ``"404-key"``, ``"404-bucket"``, ``"500"``, ``"cut"``,
    ``"ignore-range"``), then ``"ok"``."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802  # the http.server hook's name
                server.paths.append(self.path)
                what = server.script.pop(0) if server.script else "ok"
                if what.startswith(("403", "404", "500")):
                    code = {"403": "SignatureDoesNotMatch", "404-key": "NoSuchKey",
                            "404-bucket": "NoSuchBucket", "500": "InternalError"}[what]  # fmt: skip
                    body = f"<Error><Code>{code}</Code></Error>".encode()
                    self.send_response(int(what[:3]))
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                first, last = self.headers["Range"].removeprefix("bytes=").split("-")
                part = BODY if what == "ignore-range" else BODY[int(first) : int(last) + 1]
                self.send_response(200 if what == "ignore-range" else 206)
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if what == "cut":
                    self.wfile.write(part[: len(part) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(part)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"


class _Signer:
    """Stands in for s3fs: ``sign`` gives the server's address with a numbered signature."""

    def __init__(self, base: str) -> None:
        self.base, self.calls = base, 0
        self.req_kw = {"RequestPayer": "requester"}
        self.given: list[dict[str, Any]] = []

    def sign(self, url: str, expiration: int, **params: Any) -> str:
        self.calls += 1
        self.given.append(params)
        return f"{self.base}/{url.removeprefix('s3://')}?X-Amz-Signature={self.calls}"


@pytest.fixture
def server() -> Iterator[_Server]:
    server = _Server()
    yield server
    server.http.shutdown()
    server.http.server_close()


def _reader(server: _Server) -> tuple[DirectReader, _Signer]:
    signer = _Signer(server.base)
    return DirectReader(lambda: signer, {"config_kwargs": {"read_timeout": 5}}, 2), signer


def _read(reader: DirectReader, start: int, end: int, block: int = 1024) -> bytes:
    got = bytearray(end - start)

    def arrived(offset: int, view: memoryview) -> None:
        assert (offset - start) % block == 0 and len(view) <= block
        got[offset - start : offset - start + len(view)] = view

    reader.read("s3://bucket/data/shard.arrow", start, end, block, arrived)
    return bytes(got)


def test_ranges_arrive_block_by_block_with_one_signature(server: _Server) -> None:
    reader, signer = _reader(server)
    assert _read(reader, 0, len(BODY)) == BODY
    assert _read(reader, 2048, 5000) == BODY[2048:5000]
    assert signer.calls == 1  # signed once, reused while fresh
    assert signer.given == [{"RequestPayer": "requester"}]  # s3fs's request parameters


def test_a_refused_signature_is_signed_again_once(server: _Server) -> None:
    reader, signer = _reader(server)
    server.script = ["403"]
    assert _read(reader, 0, 4096) == BODY[:4096]
    assert signer.calls == 2 and server.paths[-1].endswith("Signature=2")
    server.script = ["403", "403"]
    with pytest.raises(PermissionError, match="SignatureDoesNotMatch"):
        _read(reader, 0, 4096)


@pytest.mark.parametrize(
    ("what", "error", "words"),
    [
        ("404-key", FileNotFoundError, "NoSuchKey"),
        ("404-bucket", FileNotFoundError, "NoSuchBucket"),
        ("500", OSError, "HTTP 500 InternalError"),
        ("cut", OSError, "connection ended"),
        ("ignore-range", OSError, "did not honour the byte range"),
    ],
)
def test_failures_map_to_what_the_store_retries_or_reports(
    server: _Server, what: str, error: type[Exception], words: str
) -> None:
    reader, _ = _reader(server)
    server.script = [what]
    with pytest.raises(error, match=words):
        _read(reader, 1024, 4096)
    assert _read(reader, 1024, 4096) == BODY[1024:4096]  # the next request is whole again


def test_a_forked_reader_reads_what_its_parent_signed_without_signing(server: _Server) -> None:
    reader, signer = _reader(server)
    signed, at = reader.signed("s3://bucket/data/other.arrow")
    made: list[int] = []
    child = reader.forked(lambda: made.append(1) or signer)  # type: ignore[func-returns-value]
    child.remember("s3://bucket/data/other.arrow", signed, at)
    got = bytearray()
    child.read("s3://bucket/data/other.arrow", 0, 100, 64, lambda _, v: got.extend(v))
    assert bytes(got) == BODY[:100] and not made and signer.calls == 1
    import loadwise.stores.direct as direct

    child.remember("s3://bucket/data/other.arrow", signed, at - direct.RESIGN_AFTER)
    child.read("s3://bucket/data/other.arrow", 0, 100, 64, lambda _, v: None)
    assert made and signer.calls == 2  # signed too long ago by the parent: signed again


def test_only_plain_s3_is_read_this_way() -> None:
    class Fs:
        s3_additional_kwargs: dict[str, str] = {}

        def sign(self, url: str, expiration: int) -> str:
            return url

    plain = Fs()
    keyed = Fs()
    keyed.s3_additional_kwargs = {"SSECustomerKey": "k"}
    assert DirectReader.usable(plain, "s3://b/p")
    assert not DirectReader.usable(keyed, "s3://b/p")  # SSE-C headers: s3fs sends them
    assert not DirectReader.usable(plain, "gs://b/p")
