"""Object storage going wrong (moto's S3 server on 127.0.0.1): each fault is a clear error
naming the URL or shard, and nothing half-written ever counts as cached."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.contracts.compare import assert_batch_holds
from tests.data import array_columns
from tests.integration.remote.conftest import S3, start_server

import loadwise
from loadwise.errors import ConfigError, IntegrityError
from loadwise.stores.remote import FetchOptions, RemoteStore, StoreError


def _no_internals(exc: BaseException) -> None:
    """The error stands alone: no chained traceback of botocore or aiohttp internals."""
    assert exc.__cause__ is None and exc.__suppress_context__


@pytest.fixture
def enforced_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server (in this process) checks credentials while the test runs; moto accepts
    any by default."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)


def test_wrong_credentials_name_the_url(
    arrays_url: str, s3: S3, cache: Path, enforced_auth: None
) -> None:
    with pytest.raises(StoreError, match="credentials") as caught:
        loadwise.open(arrays_url, "streaming", cache_dir=cache,
                      storage_options=s3.options(key="wrong", secret="wrong"))  # fmt: skip
    assert arrays_url in str(caught.value)
    _no_internals(caught.value)


def test_a_missing_bucket_names_the_url(s3: S3, cache: Path) -> None:
    url = "s3://no-such-bucket-here/data"
    with pytest.raises(StoreError, match="bucket") as caught:
        loadwise.open(url, cache_dir=cache, storage_options=s3.options())
    assert url in str(caught.value)
    _no_internals(caught.value)
    with pytest.raises(StoreError, match="no-such-bucket-here"):
        loadwise.pack(array_columns(), url, progress=False, storage_options=s3.options())


def test_a_cache_limit_below_one_shard_is_refused(arrays_url: str, s3: S3, cache: Path) -> None:
    """Mosaic #417: a limit below a shard deadlocked; here it is refused when opened."""
    with pytest.raises(ConfigError, match="cache_limit.*smaller than shard"):
        loadwise.open(arrays_url, "streaming", cache_dir=cache, cache_limit=100,
                      storage_options=s3.options())  # fmt: skip


@pytest.mark.parametrize("direct", [True, False], ids=["presigned", "fsspec"])
def test_an_object_changed_after_the_manifest_is_refused_naming_the_shard(
    arrays_url: str, s3: S3, cache: Path, direct: bool
) -> None:
    store = RemoteStore(arrays_url, cache_dir=cache, storage_options=s3.options(),
                        fetch=FetchOptions(direct=direct))  # fmt: skip
    data = loadwise.open(store, "streaming")
    shard = data.manifest.shards[1]
    bucket, key = arrays_url.removeprefix("s3://").split("/", 1)
    body = s3.client().get_object(Bucket=bucket, Key=f"{key}/{shard.name}")["Body"].read()
    changed = body[:300] + bytes([body[300] ^ 0xFF]) + body[301:]
    s3.client().put_object(Bucket=bucket, Key=f"{key}/{shard.name}", Body=changed)
    first = int(data.manifest.shard_starts()[1])
    with pytest.raises(IntegrityError, match=shard.name):
        data.get_batch([first])
    assert data.store.cache.usage().total == 0  # the refused bytes were never kept
    assert_batch_holds(data.get_batch([0]), array_columns(), [0], "shard 0 is fine")


def _flaky_store(
    s3: S3, url: str, cache: Path, stop_after: int, server: object, direct: bool
) -> RemoteStore:
    """A store over ``server`` that stops it after ``stop_after`` ranged reads began."""
    store = RemoteStore(
        url, cache_dir=cache, storage_options=s3.options(),
        fetch=FetchOptions(part_bytes=1, parallel=1, retries=1, backoff=0.05, prefetch=0,
                           direct=direct),
    )  # fmt: skip
    real, calls = store._part, [0]

    def part(*args: object) -> None:
        calls[0] += 1
        if calls[0] == stop_after + 1:
            server.stop()  # type: ignore[attr-defined]  # the server dies mid-download
        real(*args)  # type: ignore[arg-type]

    store._part = part  # type: ignore[method-assign]
    return store


@pytest.mark.parametrize("direct", [True, False], ids=["presigned", "fsspec"])
def test_a_server_stopped_mid_download_fails_clearly_and_caches_nothing(
    s3: S3, tmp_path: Path, direct: bool
) -> None:
    server = start_server()
    host, port = server.get_host_and_port()
    own = S3(f"http://{host}:{port}", server)
    url = f"s3://{own.new_bucket()}/arrays"
    loadwise.pack(array_columns(), url, shard_bytes=1_500, block_bytes=256, progress=False,
                  storage_options=own.options())  # fmt: skip
    store = _flaky_store(own, url, tmp_path / "cache", 2, server, direct)
    data = loadwise.open(store, "streaming")
    with pytest.raises(StoreError, match="failed 2 times") as caught:
        data.get_batch([0])
    assert url in str(caught.value) and "server is up" in str(caught.value)
    _no_internals(caught.value)
    assert store.cache.usage().total == 0
    left = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert not [
        n
        for n in left
        if n.endswith(".arrow") or ".part" in n or ".arrow." in n and not n.endswith(".lock")
    ], left  # no copy, no partial download


@pytest.mark.parametrize("where", ["reserve", "write"])
def test_a_full_cache_disk_is_the_caches_error_at_once(
    arrays_url: str, s3: S3, cache: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """No room on the cache's disk is not the storage failing: one attempt, an error naming
    the cache folder and what to do, and nothing half-written left."""
    import errno

    from loadwise.stores import cache as cache_module
    from loadwise.stores import transfer
    from loadwise.stores.cache import CacheError

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "reserve":
        monkeypatch.setattr(cache_module.os, "posix_fallocate", full)
    else:
        monkeypatch.setattr(transfer, "write_all", full)
    store = RemoteStore(arrays_url, cache_dir=cache, storage_options=s3.options(),
                        fetch=FetchOptions(prefetch=0, backoff=5))  # fmt: skip
    data = loadwise.open(store, "streaming")
    with pytest.raises(CacheError, match="No space left") as caught:
        data.get_batch([0])  # retried, it would end in a StoreError after 35 s of backoff
    assert str(cache.resolve()) in str(caught.value) and "cache_dir" in str(caught.value)
    _no_internals(caught.value)
    assert [p.name for p in cache.rglob("*.part")] == []
