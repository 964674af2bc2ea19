"""Datasets in object storage (moto's S3 server on 127.0.0.1): every mode keeps the contract,
``auto`` streams, ``verify`` and ``pack`` work on URLs, and the shared cache stays bounded."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from tests.contracts.compare import assert_batch_holds
from tests.contracts.modes import assert_mode_contract
from tests.data import array_columns
from tests.integration.remote.conftest import S3

import loadwise
from loadwise.errors import ModeError
from loadwise.stores.remote import RemoteStore


def _open(url: str, s3: S3, cache: Path, mode: str = "streaming", limit: int = 10**6):
    return loadwise.open(
        url, mode, cache_dir=cache, cache_limit=limit, storage_options=s3.options()
    )


@pytest.mark.parametrize("mode", ["streaming", "lazy", "eager"])
def test_remote_modes_keep_the_contract(arrays_url: str, s3: S3, cache: Path, mode: str) -> None:
    assert_mode_contract(lambda: _open(arrays_url, s3, cache, mode), array_columns())


@pytest.mark.slow  # ~30 s; the fast sample: test_cache_stays_within_limit_plus_one_shard_...
def test_streaming_through_a_small_cache_keeps_the_contract(
    arrays_url: str, s3: S3, cache: Path
) -> None:
    limit = 2 * max(s.num_bytes for s in _open(arrays_url, s3, cache).manifest.shards)
    assert_mode_contract(lambda: _open(arrays_url, s3, cache, limit=limit), array_columns())


def test_auto_streams_remote_data_and_says_why(
    arrays_url: str, s3: S3, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="loadwise"):
        data = _open(arrays_url, s3, cache, "auto")
    assert data.mode == "streaming"
    assert "is remote" in caplog.text and arrays_url in caplog.text


def test_lazy_needs_the_whole_dataset_within_the_limit(
    arrays_url: str, s3: S3, cache: Path
) -> None:
    with pytest.raises(ModeError, match="cache_limit"):
        _open(arrays_url, s3, cache, "lazy", limit=5_000)


def test_verify_works_on_remote_datasets(arrays_url: str, s3: S3, cache: Path) -> None:
    store = RemoteStore(arrays_url, cache_dir=cache, storage_options=s3.options())
    report = loadwise.verify(store)  # type: ignore[arg-type]  # a store is accepted as is
    assert report.ok and report.shards_checked == 11
    name = loadwise.open(store, "streaming").manifest.shards[3].name  # <generation>-00003
    key = arrays_url.removeprefix("s3://").split("/", 1)
    body = s3.client().get_object(Bucket=key[0], Key=f"{key[1]}/{name}")["Body"].read()
    flipped = body[:100] + bytes([body[100] ^ 1]) + body[101:]
    s3.client().put_object(Bucket=key[0], Key=f"{key[1]}/{name}", Body=flipped)
    # the copies cached above were verified on arrival and stay right; a reader without
    # them fetches the changed object and refuses it
    fresh = RemoteStore(arrays_url, cache_dir=cache / "new", storage_options=s3.options())
    report = loadwise.verify(fresh)  # type: ignore[arg-type]
    assert [p.shard for p in report.problems] == [name]
    assert "changed after the manifest" in report.problems[0].problem


def test_one_download_per_shard_for_two_processes_sharing_a_cache(
    arrays_url: str, s3: S3, cache: Path
) -> None:
    ctx = multiprocessing.get_context("fork")
    counts = ctx.Queue()
    go = ctx.Event()
    workers = [ctx.Process(target=_read_all, args=(arrays_url, s3, cache, go, counts))
               for _ in range(2)]  # fmt: skip
    for worker in workers:
        worker.start()
    go.set()
    got = [counts.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    assert sum(got) == 11, f"downloads per process: {got}"


def _read_all(url: str, s3: S3, cache: Path, go: object, counts: object) -> None:
    store = RemoteStore(url, cache_dir=cache, cache_limit=10**6, storage_options=s3.options())
    data = loadwise.open(store, "streaming")
    go.wait(10)  # type: ignore[attr-defined]
    batch = data.get_batch(np.arange(len(data)))
    assert_batch_holds(batch, array_columns(), np.arange(len(data)), "whole")
    counts.put(store.downloads)  # type: ignore[attr-defined]


def test_a_forked_child_reads_through_the_parents_store(
    arrays_url: str, s3: S3, cache: Path
) -> None:
    data = _open(arrays_url, s3, cache)
    data.get_batch([0, 299])  # the parent's file system, threads and pins exist now
    pid = os.fork()
    if pid == 0:  # the child: its own s3fs object, nothing of the parent's
        code = 1
        try:
            cache_copy = Path(str(cache) + "-child")
            data.store.cache_dir = cache_copy  # force real downloads in the child
            assert_batch_holds(data.get_batch([0, 299]), array_columns(), [0, 299], "child")
            # what the parent signed is fetched with its signatures: no s3fs made here
            assert data.store._here().fs is None  # type: ignore[attr-defined]
            assert_batch_holds(data.get_batch([5, 150]), array_columns(), [5, 150], "child")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_forked_child_never_runs_s3fs_finalizers_of_its_parents_file_systems(
    arrays_url: str, s3: S3, cache: Path
) -> None:
    """s3fs closes a file system's session, when it is collected, through the event loop of
    the process that made it; in a forked child (a DataLoader worker) that loop has no
    thread, and each such finalizer waited 1 s: workers stalled 1-3 s mid-epoch. In a
    child they are detached and the file systems kept, so collecting never runs them."""
    import gc
    import weakref

    data = _open(arrays_url, s3, cache)
    data.get_batch([0, 299])  # the file system has a session (and s3fs's finalizer) now
    fs = weakref.ref(data.store._fs())  # type: ignore[attr-defined]
    finalizers = [
        f
        for f in list(weakref.finalize._registry)  # type: ignore[attr-defined]
        if (found := f.peek()) is not None and found[0] is fs()
    ]
    assert finalizers  # s3fs registered one: what a child must not run
    gc.disable()  # the file system is cyclic garbage once dropped: kept for the child
    try:
        del data
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                gc.collect()
                detached = not any(f.alive for f in finalizers)
                code = 0 if detached and fs() is not None else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        gc.enable()
    assert os.waitstatus_to_exitcode(status) == 0, "a finalizer of the parent's could run"
    assert all(f.alive for f in finalizers) or fs() is None  # the parent's are untouched


def test_cache_stays_within_limit_plus_one_shard_with_workers(
    arrays_url: str, s3: S3, cache: Path
) -> None:
    """Mosaic #417 (deadlock with a limit near one shard): the smallest allowed limit, two
    workers, an epoch completes and the cache never holds more than limit + one shard."""
    probe = _open(arrays_url, s3, cache)
    largest = max(s.num_bytes for s in probe.manifest.shards)
    data = _open(arrays_url, s3, cache, limit=largest)
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], data.store.cache.usage().total)
            stop.wait(0.005)

    watcher = threading.Thread(target=sample)
    watcher.start()
    try:
        seen = [
            i for b in loadwise.loader(data, 16, seed=2, num_workers=2) for i in b["index"].tolist()
        ]
    finally:
        stop.set()
        watcher.join()
    assert sorted(seen) == list(range(300))
    assert 0 < peak[0] <= 2 * largest, f"peak {peak[0]} > limit + one shard {2 * largest}"


def test_a_full_cache_does_not_refetch_within_an_epoch(
    arrays_url: str, s3: S3, cache: Path
) -> None:
    """Mosaic #339 (throughput collapses once the cache is full): with room for a batch's
    shards (a batch crossing two windows of the block order touches up to 8 of them), later
    epochs, with the cache full, fetch each shard at most once, like the first."""
    probe = _open(arrays_url, s3, cache)
    largest = max(s.num_bytes for s in probe.manifest.shards)
    data = _open(arrays_url, s3, cache, limit=8 * largest)
    loader = loadwise.loader(data, 16, seed=3, num_workers=0)
    fetched = []
    for _ in range(3):
        before = data.store.downloads
        assert sorted(i for b in loader for i in b["index"].tolist()) == list(range(300))
        fetched.append(data.store.downloads - before)
    assert all(n <= 11 for n in fetched), f"downloads per epoch: {fetched}"
    assert data.store.cache.usage().total <= 9 * largest


def test_the_cache_removes_nothing_it_did_not_write(
    arrays_url: str, s3: S3, tmp_path: Path, arrays_packed: Path
) -> None:
    """Mosaic #988 (evicted shards that existed only locally): a cache folder holding a local
    dataset and other files; evictions under a tiny limit touch only the cache's copies."""
    cache = tmp_path / "shared"
    local = cache / "mine.loadwise"
    import shutil

    shutil.copytree(arrays_packed, local)
    (cache / "notes.arrow.0123456789abcdef").write_bytes(b"not ours")
    before = {p: p.read_bytes() for p in local.iterdir()}
    largest = max(s.num_bytes for s in _open(arrays_url, s3, cache).manifest.shards)
    remote = _open(arrays_url, s3, cache, limit=largest)
    assert len(remote.get_batch(np.arange(300))["index"]) == 300
    assert {p: p.read_bytes() for p in local.iterdir()} == before
    assert (cache / "notes.arrow.0123456789abcdef").read_bytes() == b"not ours"
    # a local dataset opened with cache options is read in place: nothing is copied
    data = loadwise.open(local, "streaming", cache_dir=tmp_path / "unused", cache_limit=1)
    assert len(data.get_batch([0, 1])["index"]) == 2
    assert not (tmp_path / "unused").exists()
