"""How a remote dataset is read (moto's S3 server on 127.0.0.1): pins kept while batches
read a shard and let go when the process idles or a batch fails, read-ahead in a helper
process that may die, ``verify`` of a URL with options, a dead server reported in bounded
time."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import xxhash
from tests.contracts.compare import assert_batch_holds
from tests.data import array_columns
from tests.integration.remote.conftest import S3

import loadwise
from loadwise.cli.main import main
from loadwise.errors import IntegrityError
from loadwise.format import blocks
from loadwise.stores.pinned import HOLD
from loadwise.stores.remote import FetchOptions, RemoteStore, StoreError


def _open(url: str, s3: S3, cache: Path, **fetch: object) -> loadwise.StreamingDataset:
    store = RemoteStore(url, cache_dir=cache, storage_options=s3.options(),
                        fetch=FetchOptions(**fetch))  # type: ignore[arg-type]  # fmt: skip
    return loadwise.open(store, "streaming")  # type: ignore[return-value]


def _held(data: loadwise.StreamingDataset) -> int:
    """Copies pinned by this process (the batch's reader and the block checks each hold
    their own file of a shard)."""
    return len({f.copy for f in data.store._here().held()})  # type: ignore[attr-defined]


def test_verify_takes_storage_options_for_a_url(arrays_url: str, s3: S3, cache: Path) -> None:
    report = loadwise.verify(arrays_url, storage_options=s3.options(), cache_dir=cache)
    assert report.ok and report.shards_checked == 11
    assert report.path == arrays_url  # a URL stays a URL (a Path would mangle `s3://`)


def test_the_verify_command_takes_storage_options(
    arrays_url: str,
    s3: S3,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("LOADWISE_CACHE", str(cache))
    options = json.dumps(s3.options())
    assert main(["verify", arrays_url, "--storage-options", options]) == 0
    assert "11 shard(s)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["verify", arrays_url, "--storage-options", "[1]"])
    assert refused.value.code == 2 and "a JSON object is needed" in capsys.readouterr().err


def test_a_dead_server_is_reported_within_a_bounded_time(cache: Path) -> None:
    """s3fs's retries (5) under botocore's under ours took ~25 s; now ours alone: 4
    attempts, 1.4 s of backoff."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    options = {"key": "k", "secret": "s", "endpoint_url": f"http://127.0.0.1:{port}",
               "client_kwargs": {"region_name": "us-east-1"}}  # fmt: skip
    started = time.monotonic()
    with pytest.raises(StoreError, match="failed 4 times"):
        RemoteStore("s3://bucket/data", cache_dir=cache, storage_options=options).read_manifest()
    assert time.monotonic() - started < 8


def test_batches_keep_their_shards_pinned_and_an_idle_process_lets_them_go(
    arrays_url: str, s3: S3, cache: Path
) -> None:
    data = _open(arrays_url, s3, cache, prefetch=0)
    data.get_batch([0, 1])
    assert _held(data) == 1  # kept for the next batch, mapped
    data.get_batch([299])
    assert _held(data) == 1  # the first shard let go: this batch did not read it
    time.sleep(HOLD * 3)
    assert _held(data) == 0  # no batch for HOLD seconds: every pin let go


def test_a_batch_that_fails_lets_its_pins_go(arrays_url: str, s3: S3, cache: Path) -> None:
    data = _open(arrays_url, s3, cache, prefetch=0)
    shard = data.manifest.shards[1]
    bucket, key = arrays_url.removeprefix("s3://").split("/", 1)
    body = s3.client().get_object(Bucket=bucket, Key=f"{key}/{shard.name}")["Body"].read()
    s3.client().put_object(Bucket=bucket, Key=f"{key}/{shard.name}", Body=body[::-1])
    with pytest.raises(IntegrityError, match=shard.name):
        data.get_batch([0, int(data.manifest.shard_starts()[1])])
    time.sleep(HOLD * 3)
    assert _held(data) == 0


def test_read_ahead_runs_in_a_helper_and_reading_survives_its_death(
    arrays_url: str, s3: S3, cache: Path
) -> None:
    data = _open(arrays_url, s3, cache, prefetch=4, helper=True)
    seen = []
    for number, batch in enumerate(loadwise.loader(data, 16, seed=5, num_workers=0)):
        helper = data.store._here().helper  # type: ignore[attr-defined]
        assert helper is not None and (number > 0 or helper.alive)
        if number == 1:
            os.kill(helper.pid, signal.SIGKILL)  # killed mid-epoch: readers fetch themselves
        assert_batch_holds(batch, array_columns(), batch["index"].tolist(), f"batch {number}")
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(300))
    data.close()
    assert data.store._here().helper is None  # type: ignore[attr-defined]


def _damage(data: Any, number: int) -> int:
    """Flip a byte of the first fixed field's values in the cached copy of shard ``number``;
    the first sample of that shard."""
    shard = data.manifest.shards[number]
    field = next(f for f in data.manifest.fields if f.fixed)
    with open(data.store._copy(shard), "r+b") as copy:
        copy.seek(shard.buffers[field.name]["values"].offset)
        byte = copy.read(1)
        copy.seek(-1, os.SEEK_CUR)
        copy.write(bytes([byte[0] ^ 0xFF]))
    return int(data.manifest.shard_starts()[number])


def test_copies_checked_on_arrival_here_are_not_hashed_again_but_others_are(
    arrays_url: str,
    s3: S3,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The blocks of a shard this process downloaded were checked as they arrived: reading
    them does not hash them again. A copy another reader finds in the cache is checked when
    read; a damaged one (a disk error, a crash) is dropped and fetched again, and if the
    new copy is damaged too, the error names the sample and the cache's disk."""
    checked: list[int] = []  # sizes of the blocks hashed by the block checks

    def digest(data: bytes) -> str:
        checked.append(len(data))
        return xxhash.xxh3_64_hexdigest(data)

    monkeypatch.setattr(blocks, "xxhash", SimpleNamespace(xxh3_64_hexdigest=digest))
    data = _open(arrays_url, s3, cache, prefetch=0)
    everything = list(range(len(data)))
    assert_batch_holds(data.get_batch(everything), array_columns(), everything, "downloaded")
    assert checked == []
    other = _open(arrays_url, s3, cache, prefetch=0)  # a reader that downloaded nothing
    first = _damage(other, 2)
    assert_batch_holds(other.get_batch([0]), array_columns(), [0], "cached")
    assert checked  # shard 0's blocks, read from the cache, were hashed
    with caplog.at_level(logging.WARNING, logger="loadwise.stores.remote"):
        batch = other.get_batch([first, first + 1])
    assert_batch_holds(batch, array_columns(), [first, first + 1], "fetched again")
    assert other.store.downloads == 1  # type: ignore[attr-defined]
    assert other.manifest.shards[2].name in caplog.text and "damaged" in caplog.text

    third = _open(arrays_url, s3, cache, prefetch=0)
    first = _damage(third, 3)
    monkeypatch.setattr(third.store, "refetch", lambda name: None)  # the disk damages again
    with pytest.raises(IntegrityError, match=f"sample {first} .*fetched again.*cache_dir"):
        third.get_batch([first])


def test_scattered_rows_are_gathered_from_the_mapped_copy_as_read_one_by_one(
    s3: S3, bucket: str, cache: Path, tmp_path: Path
) -> None:
    """Streaming reads a batch's scattered fixed-size rows of a remote shard in one gather
    from its mapped copy (``read_rows``): the same bytes as one read per row, from a local
    pack of the same source, and a row past the shard's end is refused."""
    import numpy as np

    source = {"x": np.arange(4_000 * 96, dtype=np.uint8).reshape(4_000, 96) ^ 0x5A}
    url = f"s3://{bucket}/rows"
    loadwise.pack(source, url, progress=False, storage_options=s3.options())
    loadwise.pack(source, tmp_path / "local", progress=False)
    remote = loadwise.open(url, "streaming", cache_dir=cache, storage_options=s3.options())
    local = loadwise.open(tmp_path / "local", "streaming")
    picked = np.random.default_rng(3).permutation(4_000)[:300]  # scattered: row by row
    assert np.array_equal(remote.get_batch(picked)["x"], source["x"][picked])
    spec = remote.manifest.shards[0]
    base, size = spec.buffers["x"]["values"].offset, 96
    rows = np.sort(np.random.default_rng(4).choice(spec.num_samples, 50, replace=False))
    gathered, one_by_one = np.zeros((60, size), np.uint8), np.zeros((60, size), np.uint8)
    at = np.arange(5, 55)
    with remote.store.open(spec.name, spec.num_bytes) as mapped:  # type: ignore[attr-defined]
        mapped.read_rows(gathered, at, base, size, rows)
        with pytest.raises(IntegrityError, match=spec.name):
            mapped.read_rows(gathered, at[:1], spec.num_bytes, size, rows[:1])
    with local.store.open(spec.name, spec.num_bytes) as plain:  # type: ignore[attr-defined]
        plain.read_rows(one_by_one, at, base, size, rows)
    assert np.array_equal(gathered, one_by_one) and not gathered[:5].any()
    assert np.array_equal(gathered[at], source["x"][rows])
