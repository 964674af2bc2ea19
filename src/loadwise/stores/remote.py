"""A packed dataset in object storage (any fsspec URL: ``s3://bucket/prefix``, ``gs://``, ...),
read through a bounded local cache (``cache.py``).

A shard is fetched whole into the cache the first time a process needs it (or earlier, by
read-ahead, ``prefetch.py``): in parts of ``part_bytes`` read concurrently, each block
checked against the manifest's block checksums as it arrives, retried with backoff, written
to a reserved temporary file, then renamed into place. Readers get a ``RemoteShardFile``:
the same ``ShardFile`` over the local copy, pinned only while a batch reads it, so idle
copies can be evicted and the cache's bytes stay bounded.

fsspec file systems hold an event loop thread and connections that do not survive ``fork``:
everything per process (file system, cache handles, thread pool, pins) is made again in
each process that uses the store, and dropped when it is pickled.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xxhash

from loadwise.cache_dir import cache_dir as loadwise_cache_dir
from loadwise.errors import ConfigError, FormatError, IntegrityError
from loadwise.stores.base import MANIFEST_NAME, ShardFile
from loadwise.stores.cache import ShardCache
from loadwise.stores.direct import DirectReader
from loadwise.stores.filesystem import _filesystem
from loadwise.stores.pinned import RemoteShardFile, _Janitor, _process
from loadwise.stores.transfer import Copy, FetchOptions, StoreError, refused, retried

log = logging.getLogger(__name__)

#: Bytes the cache of a remote dataset may hold unless ``cache_limit`` says otherwise.
DEFAULT_CACHE_LIMIT = 8 * 2**30


class RemoteStore:
    """A dataset at ``url`` read through a shard cache in ``cache_dir`` of ``cache_limit``
    bytes; ``storage_options`` go to fsspec as they are (credentials, endpoint)."""

    def __init__(
        self,
        url: str,
        *,
        cache_dir: str | Path | None = None,
        cache_limit: int | None = None,
        storage_options: Mapping[str, Any] | None = None,
        fetch: FetchOptions | None = None,
    ) -> None:
        self.location = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fetch = fetch or FetchOptions()
        self.cache_dir = Path(cache_dir) if cache_dir else loadwise_cache_dir("remote")
        self.cache_limit = DEFAULT_CACHE_LIMIT if cache_limit is None else cache_limit
        if not isinstance(self.cache_limit, int) or self.cache_limit < 1:
            raise ConfigError(f"`cache_limit` must be bytes >= 1. Found: {cache_limit!r}.")
        self.dataset = xxhash.xxh3_64_hexdigest(self.location.encode())
        self.shards: dict[str, Any] = {}  # name -> ShardSpec, once the manifest is read
        self._sizes: dict[str, int] | None = None
        self._reset()

    # --- the ShardStore interface -----------------------------------------------------
    def read_manifest(self) -> bytes:
        from loadwise.format.spec import manifest_from_json

        try:
            data = self._get(self._url(MANIFEST_NAME))
        except FileNotFoundError:
            raise FormatError(
                f"`{self.location}` has no {MANIFEST_NAME}: it is not a loadwise dataset, or "
                f"its `pack` did not finish. Run `loadwise pack SOURCE {self.location}`."
            ) from None
        manifest = manifest_from_json(data.decode("utf-8", "replace"), self._url(MANIFEST_NAME))
        self.shards = {shard.name: shard for shard in manifest.shards}
        self._check_limit()
        return data

    def check(self, name: str, size: int) -> None:
        sizes = self._listing()
        if name not in sizes:
            raise IntegrityError(
                f"shard `{name}` is missing from `{self.location}`: re-run `loadwise pack`."
            )
        if sizes[name] != size:
            raise IntegrityError(
                f"shard `{name}` in `{self.location}` is {sizes[name]:,} bytes, the manifest "
                f"says {size:,}: the object changed after the manifest was written; re-run "
                f"`loadwise pack`, or `loadwise verify {self.location}`."
            )

    def open(self, name: str, size: int) -> ShardFile:
        if not self.shards:
            self.read_manifest()
        spec = self.shards.get(name)
        if spec is None or spec.num_bytes != size:
            raise IntegrityError(f"shard `{name}` is not in the manifest of `{self.location}`.")
        return RemoteShardFile(self, spec)

    # --- what readers of a remote store use besides -------------------------------------
    def begin(self, indices: np.ndarray) -> None:
        """A batch of ``indices`` starts: its shards are not evicted by this process to fetch
        another of them (a batch that does not fit the cache still proceeds, refetching)."""
        local = self._here()
        if local.starts is None:
            specs = list(self.shards.values())
            local.starts = np.cumsum([0] + [s.num_samples for s in specs])
            local.specs = specs
        owners = np.unique(np.searchsorted(local.starts, indices, side="right") - 1)
        local.needed = frozenset(self._copy(local.specs[n]) for n in owners.tolist())
        local.busy = True

    def idle(self) -> None:
        """A batch ended: unpin the copies it did not read (those it read stay pinned and
        mapped for the next batch, which mostly reads the same shards), and, if no batch
        starts within ``HOLD`` seconds, the rest too (``_Janitor``), so an idle process
        never keeps copies from eviction."""
        local = self._here()
        local.busy, local.since = False, time.monotonic()
        for file in local.held():
            if file.copy not in local.needed:
                file.release()
        if local.janitor is None and local.files:
            local.janitor = _Janitor(self, local)

    def close(self) -> None:
        """Let every pin go and stop the read-ahead helper (a dataset over this store was
        closed); the store stays usable: both are made again when needed."""
        local = self._here()
        helper, local.helper = local.helper, None
        if helper is not None:
            helper.close()
        self.let_go()

    def let_go(self) -> None:
        """Unpin every copy this process holds (while it waits for room in the cache: the
        copies of its own batch may have to make way)."""
        for file in self._here().held():
            file.release()

    def read_ahead(self, manifest: Any, batches: list[np.ndarray]) -> Iterator[np.ndarray]:
        """``batches`` as they are handed out, fetching the shards of those ahead."""
        from loadwise.stores.prefetch import read_ahead

        return read_ahead(self, manifest.shard_starts(), [s.name for s in manifest.shards], batches)

    def fetch_ahead(self, name: str, needed_first: Iterable[str] = ()) -> None:
        """Bring shard ``name`` into the cache if it fits now without waiting or evicting
        the shards ``needed_first`` (read-ahead)."""
        spec, copy = self.shards[name], self._copy(self.shards[name])
        claim = self._claim(copy)
        if copy.exists() or not claim.acquire(blocking=False):  # there, or coming
            return
        try:
            keep = frozenset(self._copy(self.shards[n]) for n in needed_first)
            self._cache().fill(copy, spec.num_bytes, partial(self._download, spec),
                               ahead=True, keep=keep)  # fmt: skip
        finally:
            claim.release()

    def start_fetch(self, name: str, needed_first: set[str]) -> bool:
        """Hand read-ahead of shard ``name`` to the helper process (``fetcher.py``); False
        if there is none (not wanted, or it could not start, or it died)."""
        local = self._here()
        if self._copy(self.shards[name]).exists():
            return True  # nothing to fetch
        if local.helper is None and self.fetch.helper and not local.helper_failed:
            from loadwise.stores.fetcher import Helper

            self._direct()  # made before the fork: the helper reads what this one signs

            try:
                local.helper = Helper(self)
            except OSError as exc:  # no more processes or pipes: fetch here
                log.debug("no read-ahead helper for %s: %s", self.location, exc)
                local.helper_failed = True
        if local.helper is None or not local.helper.alive:
            return False
        direct = self._direct()
        signed = direct.signed(self._url(name)) if direct is not None else None
        local.helper.submit(name, needed_first, signed)
        return True

    def signed_elsewhere(self, name: str, signed: str, made: float) -> None:
        """Read shard ``name`` from ``signed``, an address another process signed for it at
        ``made`` (the read-ahead helper's parent), instead of signing it here."""
        direct = self._direct()
        if direct is not None:
            direct.remember(self._url(name), signed, made)

    def acquire(self, spec: Any) -> int:
        """A pinned descriptor of the local copy of ``spec``, fetched first if needed; a
        fetch of it already under way (read-ahead, here or in the helper) is waited for."""
        cache, copy = self._cache(), self._copy(spec)
        claim = self._claim(copy)
        helper = self._here().helper
        if helper is not None:
            while not helper.wait(spec.name, 0.05):
                self.let_go()
        while True:
            fd = cache.pin(copy)
            if fd is not None:
                return fd
            while not claim.acquire(timeout=0.05):
                self.let_go()
            try:
                fd = cache.pin(copy)
                if fd is not None:
                    return fd
                cache.fill(copy, spec.num_bytes, partial(self._download, spec),
                           keep=self._here().needed, on_wait=self.let_go)  # fmt: skip
            finally:
                claim.release()

    def refetch(self, name: str) -> None:
        """Drop this process's copy of shard ``name``, found damaged after it was checked on
        arrival (a disk error, a crash): every mapping of it here is let go and the copy
        removed from the cache (unless another process has replaced it already), so the
        next read fetches a good one. Readers elsewhere keep their mappings and check
        what they read themselves."""
        spec, copy = self.shards[name], self._copy(self.shards[name])
        damaged: set[int] = set()
        for file in self._here().held():
            if file.name == name:
                damaged.add(file.inode())
                file.release()
        self._cache().discard(copy, damaged)
        with self._here().lock:
            self._here().arrived.pop(spec.name, None)
        log.warning("the cached copy of shard %s of %s was damaged: fetching it again",
                    name, self.location)  # fmt: skip

    def has_copy(self, name: str) -> bool:
        """True if shard ``name`` is in the cache now (fetched by any process)."""
        return self._copy(self.shards[name]).exists()

    def checked_on_arrival(self, name: str) -> bool:
        """True if the copy of shard ``name`` in the cache now is one this process downloaded
        (every block was checked as it arrived): readers here need not hash it again."""
        inode = self._here().arrived.get(name)
        if inode is None:
            return False
        try:
            return os.stat(self._copy(self.shards[name])).st_ino == inode
        except OSError:  # evicted since: the next copy is checked when read
            return False

    @property
    def downloads(self) -> int:
        """Shards this process downloaded (read-ahead included)."""
        return self._local.downloads

    @property
    def cache(self) -> ShardCache:
        return self._cache()

    # --- fetching ---------------------------------------------------------------------
    def _download(self, spec: Any, fd: int) -> None:
        """Fill ``fd`` with shard ``spec``: parts read concurrently, blocks verified."""
        block = spec.block_bytes
        part = max(self.fetch.part_bytes // block, 1) * block
        url = self._url(spec.name)
        starts = range(0, spec.num_bytes, part)
        pool = self._pool()
        futures = [
            pool.submit(self._part, url, spec, fd, a, min(a + part, spec.num_bytes)) for a in starts
        ]
        concurrent.futures.wait(futures)  # all done before ``fd`` may be closed
        for future in futures:
            future.result()
        inode = os.fstat(fd).st_ino  # the copy's, once renamed into place
        with self._local.lock:
            self._local.downloads += 1
            self._local.arrived[spec.name] = inode

    def _part(self, url: str, spec: Any, fd: int, start: int, end: int) -> None:
        copy = Copy(spec, fd, self.location, self._cache().root)
        direct = self._direct()
        if direct is not None:
            retried(self.fetch, url, start, end, self.location, partial(
                direct.read, url, start, end, spec.block_bytes, copy.arrived
            ))  # fmt: skip
            return
        data = memoryview(self._get(url, start, end))
        for a in range(start, end, spec.block_bytes):
            copy.check(a, data[a - start : a - start + spec.block_bytes])
        copy.write(start, data)

    def _get(self, url: str, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of ``url`` (all without them) through fsspec, retried."""
        fs = self._fs()

        def attempt() -> bytes:
            data = fs.cat_file(url, start=start, end=end)
            if start is not None and end is not None and len(data) != end - start:
                raise OSError(f"got {len(data):,} of {end - start:,} bytes")
            return bytes(data)

        return retried(self.fetch, url, start, end, self.location, attempt)

    def _listing(self) -> dict[str, int]:
        if self._sizes is None:
            try:
                found = self._fs().ls(self.location, detail=True)
            except (FileNotFoundError, PermissionError) as exc:
                raise refused(self.location, exc) from None
            self._sizes = {e["name"].rstrip("/").rsplit("/", 1)[-1]: int(e["size"]) for e in found}
        return self._sizes

    def _check_limit(self) -> None:
        if not self.shards:
            return
        largest = max(self.shards.values(), key=lambda s: s.num_bytes)
        if self.cache_limit < largest.num_bytes:
            raise ConfigError(
                f"`cache_limit` ({self.cache_limit:,} bytes) is smaller than shard "
                f"`{largest.name}` of `{self.location}` ({largest.num_bytes:,} bytes): a shard "
                f"must fit in the cache. Raise `cache_limit` to at least {largest.num_bytes:,}."
            )

    # --- per-process state ------------------------------------------------------------
    def _reset(self) -> None:
        self._local = _Local()

    def _here(self) -> _Local:
        if self._local.pid != _process():  # a forked child: nothing of the parent's is usable
            parent = self._local
            self._reset()
            self._local.parent_fs = parent.fs  # but its client's loaded models, see ``_fs``
            self._local.parent_direct = parent.direct or parent.parent_direct  # and signed URLs
        return self._local

    def _fs(self) -> Any:
        local = self._here()
        if local.fs is None:
            local.fs = _filesystem(self.location, self.storage_options, local.parent_fs, True)
        return local.fs

    def _direct(self) -> DirectReader | None:
        """This process's presigned-URL reader (``direct.py``), if shards are read that way."""
        local = self._here()
        if local.direct is None:
            maker = _fs_maker(self)
            if local.parent_direct:  # forked: no file system needed to read what was signed
                local.direct = local.parent_direct.forked(maker)
            elif self.fetch.direct and DirectReader.usable(self._fs(), self.location):
                local.direct = DirectReader(maker, self.storage_options, self.fetch.parallel)
            else:
                local.direct = False
        return local.direct or None

    def _cache(self) -> ShardCache:
        local = self._here()
        if local.cache is None:
            largest = max((s.num_bytes for s in self.shards.values()), default=0)
            local.cache = ShardCache(self.cache_dir, self.cache_limit, slack=largest)
        return local.cache

    def _claim(self, copy: Path) -> threading.Lock:
        """The lock a thread of this process holds while it fetches ``copy``: others wait
        on it and wake the moment it is done (the cache's file lock is for processes)."""
        local = self._here()
        with local.lock:
            return local.claims.setdefault(copy, threading.Lock())

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        local = self._here()
        if local.pool is None:
            local.pool = concurrent.futures.ThreadPoolExecutor(
                self.fetch.parallel, thread_name_prefix="loadwise-fetch"
            )
        return local.pool

    def _copy(self, spec: Any) -> Path:
        """The cache path of ``spec``'s copy (one ``Path`` per shard: its hash is kept)."""
        local = self._here()
        copy = local.copies.get(spec.name)
        if copy is None:
            copy = local.copies[spec.name] = self._cache().path(
                self.dataset, spec.name, spec.xxh3_64
            )
        return copy

    def _url(self, name: str) -> str:
        return f"{self.location}/{name}"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_local"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def __repr__(self) -> str:
        return f"RemoteStore({self.location!r}, cache_dir={str(self.cache_dir)!r})"


def _fs_maker(store: RemoteStore) -> Callable[[], Any]:
    """``store._fs`` without holding ``store``: the reader it is given to lives in the
    store, and a cycle would leave every dropped store to the cyclic collector."""
    ref = weakref.ref(store)

    def fs() -> Any:
        alive = ref()
        if alive is None:
            raise StoreError("the dataset's remote store is gone: open the dataset again.")
        return alive._fs()

    return fs


class _Local:
    """What a ``RemoteStore`` holds for one process only."""

    def __init__(self) -> None:
        self.pid = _process()
        self.fs: Any = None
        self.cache: ShardCache | None = None
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.ahead: concurrent.futures.ThreadPoolExecutor | None = None
        self.files: weakref.WeakSet[RemoteShardFile] = weakref.WeakSet()  # pinned ones
        self.downloads = 0
        self.arrived: dict[str, int] = {}  # shard -> inode of the copy downloaded here
        self.lock = threading.Lock()
        self.starts: np.ndarray | None = None  # first sample of each shard (``begin``)
        self.specs: list[Any] = []
        self.needed: frozenset[Path] = frozenset()  # copies of the batch being read
        self.copies: dict[str, Path] = {}  # shard name -> its copy's path
        self.claims: dict[Path, threading.Lock] = {}  # copies being fetched by a thread
        self.busy, self.since = False, 0.0  # a batch is being read; when the last ended
        self.janitor: _Janitor | None = None
        self.direct: DirectReader | Literal[False] | None = None  # False: through fsspec
        self.helper: Any = None  # fetcher.Helper, once read-ahead started one
        self.helper_failed = False
        self.parent_fs: Any = None  # the file system of the process this one forked from
        self.parent_direct: DirectReader | Literal[False] | None = None  # and its reader

    def held(self) -> list[RemoteShardFile]:
        """The files holding a pin now."""
        with self.lock:
            return list(self.files)

    def hold(self, file: RemoteShardFile) -> None:
        with self.lock:
            self.files.add(file)

    def drop(self, file: RemoteShardFile) -> None:
        with self.lock:
            self.files.discard(file)


__all__ = [
    "DEFAULT_CACHE_LIMIT",
    "FetchOptions",
    "RemoteShardFile",
    "RemoteStore",
    "StoreError",
]
