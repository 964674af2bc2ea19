"""Read-ahead in a helper process: the shards ``prefetch.py`` asks for are fetched into the
shared cache by a forked child, so the reading process keeps its interpreter to itself.

Why a process: a Python object-storage client (s3fs on aiobotocore) spends about as much
CPU under the GIL per byte as reading the batch does (measured: 0.36-0.39 s of CPU to fetch
90 MiB from moto, 0.17 s to read the epoch from a warm cache). In one process the two take
turns; in two they run side by side, as fetching and reading do against local disk.

The helper is the same ``RemoteStore``, forked (so it starts at once, with the manifest in
hand) and making its own file system, pools and locks, as every forked process does; the
cache's rules hold for it as for any process (admission within the limit, one download per
shard, a killed download never counted). It is told what to fetch one JSON line at a time
through a pipe and answers one line per shard when the attempt ends; it exits when the pipe
closes (the parent dropped it, or ended). Nothing depends on it: if it cannot start or
dies, readers fetch what they need themselves, as without a helper.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import threading
import weakref
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from loadwise.stores.remote import RemoteStore

from loadwise.system import ForkClosedFds

log = logging.getLogger(__name__)

#: The parent's ends of every helper's pipes: a process forked later (a DataLoader worker,
#: another helper) closes them, or a helper would never see its pipe close.
_PIPES = ForkClosedFds()


class Helper:
    """The parent's handle on one helper process: ``submit`` a shard, ``wait`` for it. The
    helper ends when this handle is dropped (its pipe is closed)."""

    def __init__(self, store: RemoteStore) -> None:
        requests_r, requests_w = os.pipe()
        answers_r, answers_w = os.pipe()
        with _PIPES.lock:  # a fork elsewhere waits: no pipe end is missed
            _PIPES.fds.update((requests_w, answers_r))
        pid = os.fork()
        if pid == 0:  # the helper (the parent's ends were closed by ``_after_fork_in_child``)
            code = 1
            try:
                with os.fdopen(requests_r) as requests, os.fdopen(answers_w, "w") as answers:
                    serve(store, requests, answers)
                code = 0
            finally:
                os._exit(code)
        os.close(requests_r)
        os.close(answers_w)
        self.pid = pid
        self._requests = os.fdopen(requests_w, "w")
        self._state = _Pending()
        answers_file = os.fdopen(answers_r)
        threading.Thread(target=self._state.answers, args=(answers_file,),
                         name="loadwise-helper", daemon=True).start()  # fmt: skip
        self._finalizer = weakref.finalize(self, _stop, pid, self._requests, os.getpid())

    @property
    def alive(self) -> bool:
        return self._state.alive

    def submit(
        self, name: str, needed_first: set[str], signed: tuple[str, float] | None = None
    ) -> None:
        """Ask for shard ``name`` (read-ahead: only if it fits without evicting those
        ``needed_first``), from the address ``signed`` (and when it was signed) if the parent
        signed one; a request still pending for it is not repeated."""
        if self._state.add(name):
            request = {"shard": name, "keep": sorted(needed_first), "signed": signed}
            line = json.dumps(request) + "\n"
            try:
                self._requests.write(line)
                self._requests.flush()
            except (OSError, ValueError):  # the helper is gone: readers fetch for themselves
                self._state.gone()

    def wait(self, name: str, timeout: float) -> bool:
        """True once no request for ``name`` is pending (done, failed, or never asked)."""
        with self._state.lock:
            event = self._state.pending.get(name)
        return event is None or event.wait(timeout)

    def close(self) -> None:
        """Stop the helper now (its fetches under way are dropped, never counted)."""
        self._finalizer()


class _Pending:
    """Requests the helper has not answered yet (shared with the thread reading answers,
    which must not keep the ``Helper`` alive)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, threading.Event] = {}
        self.alive = True

    def add(self, name: str) -> bool:
        with self.lock:
            if not self.alive or name in self.pending:
                return False
            self.pending[name] = threading.Event()
            return True

    def answers(self, stream: IO[str]) -> None:
        fd = stream.fileno()
        try:
            for line in stream:
                answer = json.loads(line)
                if "failed" in answer:
                    log.debug("read-ahead of %s failed: %s", answer["failed"], answer["error"])
                with self.lock:
                    event = self.pending.pop(answer.get("done") or answer.get("failed"), None)
                if event is not None:
                    event.set()
        except (OSError, ValueError):
            pass
        finally:
            with _PIPES.lock:  # forgotten and closed at once: its number may be reused
                _PIPES.fds.discard(fd)
                stream.close()
            self.gone()

    def gone(self) -> None:
        with self.lock:
            self.alive = False
            pending, self.pending = self.pending, {}
        for event in pending.values():
            event.set()


def _stop(pid: int, requests: IO[str], parent: int) -> None:
    """Close the helper's pipe (it exits) and reap it; only in the process that made it."""
    if os.getpid() != parent:
        return
    with _PIPES.lock:
        with contextlib.suppress(OSError, ValueError):
            _PIPES.fds.discard(requests.fileno())
        with contextlib.suppress(OSError, ValueError):
            requests.close()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def serve(store: RemoteStore, requests: IO[str], answers: IO[str]) -> None:
    """The helper's loop: one ``fetch_ahead`` per request line, answered when it ends."""
    lock = threading.Lock()

    def fetch(name: str, keep: list[str]) -> None:
        try:
            store.fetch_ahead(name, [k for k in keep if k in store.shards])
            answer = {"done": name}
        except Exception as exc:  # noqa: BLE001  # the reader fetches it and raises
            answer = {"failed": name, "error": str(exc)}
        with lock, contextlib.suppress(OSError, ValueError):
            answers.write(json.dumps(answer) + "\n")
            answers.flush()

    pool = concurrent.futures.ThreadPoolExecutor(max(store.fetch.prefetch, 1))
    for line in requests:
        request = json.loads(line)
        if request.get("signed"):
            store.signed_elsewhere(request["shard"], *request["signed"])
        pool.submit(fetch, request["shard"], request["keep"])
    pool.shutdown(wait=False, cancel_futures=True)  # the parent is gone: nothing more to do
