"""``MediaServer``: a real HTTP server on 127.0.0.1 for tests, the example and benchmarks,
serving given files with a latency knob, plus the broken endpoints URL fetching must survive.

Paths it answers (every answer after ``latency`` seconds):

| path | answer |
|---|---|
| ``/files/<name>`` | the bytes given for ``name`` (404 if none) |
| ``/status/<code>`` | that status, with a short body |
| ``/hang`` | accepts the request and never answers (until the server closes) |
| ``/trickle`` | a 200 that sends one byte every 0.2 s, forever |
| ``/bytes/<n>`` | ``n`` bytes (``?length=no``: without a Content-Length header) |
| ``/redirect?to=<url>`` | 302 to ``url`` (any scheme: the client must refuse what it should) |

It counts the requests it received (``requests``), so a test can prove a cached run made none.
Threads serve connections (keep-alive), so many requests can be in flight at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class MediaServer:
    """An HTTP server on 127.0.0.1 (a free port) serving ``files``; use it as a context
    manager, or ``start()``/``close()``."""

    def __init__(self, files: Mapping[str, bytes] | None = None, latency: float = 0.0) -> None:
        self.files = dict(files or {})
        self.latency = latency
        self.closing = threading.Event()
        self._count = self._open = self._most_open = 0
        self._count_lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def requests(self) -> int:
        """Requests received so far."""
        return self._count

    @property
    def most_in_flight(self) -> int:
        """The most requests that were being answered at once."""
        return self._most_open

    def url(self, path: str) -> str:
        """The URL of ``path`` on this server (``files/a.jpg``, ``status/404``, ...)."""
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def file_url(self, name: str) -> str:
        return self.url(f"files/{name}")

    def start(self) -> MediaServer:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; requests left hanging are released."""
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def started(self) -> None:
        with self._count_lock:
            self._count += 1
            self._open += 1
            self._most_open = max(self._most_open, self._open)

    def finished(self) -> None:
        with self._count_lock:
            self._open -= 1


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the default 5 drops connections opened together (1 s retry)


def _handler(server: MediaServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connections

        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            server.started()
            try:
                self._route()
            finally:
                server.finished()

        def _route(self) -> None:
            if server.latency:
                time.sleep(server.latency)
            parts = urlsplit(self.path)
            head, _, rest = parts.path.strip("/").partition("/")
            query = parse_qs(parts.query)
            route = _ROUTES.get(head)
            if route is None:
                self._answer(404, b"no such route")
            else:
                route(self, rest, query)

        def _answer(self, status: int, body: bytes, headers: Mapping[str, str] = {}) -> None:  # noqa: B006
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    def files(h: Any, name: str, query: Any) -> None:
        body = server.files.get(name)
        h._answer(200, body) if body is not None else h._answer(404, b"not found")

    def status(h: Any, code: str, query: Any) -> None:
        h._answer(int(code), f"status {code}".encode())

    def hang(h: Any, rest: str, query: Any) -> None:
        server.closing.wait()
        h.close_connection = True

    def trickle(h: Any, rest: str, query: Any) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        while not server.closing.wait(0.2):
            h.wfile.write(b"x")
            h.wfile.flush()
        h.close_connection = True

    def many(h: Any, count: str, query: Any) -> None:
        size = int(count)
        h.send_response(200)
        if query.get("length") != ["no"]:
            h.send_header("Content-Length", str(size))
        h.end_headers()
        chunk = bytes(1 << 16)
        sent = 0
        try:
            while sent < size and not server.closing.is_set():
                piece = chunk[: size - sent]
                h.wfile.write(piece)
                sent += len(piece)
        except OSError:  # the client hung up at its cap: what it should do
            pass
        h.close_connection = True

    def redirect(h: Any, rest: str, query: Any) -> None:
        h._answer(302, b"", {"Location": query.get("to", ["/"])[0]})

    _ROUTES = {
        "files": files, "status": status, "hang": hang, "trickle": trickle, "bytes": many,
        "redirect": redirect,
    }  # fmt: skip
    return Handler
