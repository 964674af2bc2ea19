"""``LMDBSource``: a sample per key; images, .npy, bytes and text; pickles refused, named."""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.contracts.sources import assert_source_contract
from tests.scientific import columns, npy_bytes, npy_values, write_lmdb

import loadwise
from loadwise.errors import SourceError
from loadwise.sources.lmdb import LMDBFile, LMDBSource, sniff

lmdb = pytest.importorskip("lmdb")


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def npy_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lmdb(tmp_path_factory.mktemp("lmdb") / "npy.lmdb", npy_values())


def test_lmdb_source_keeps_the_contract(npy_db: Path) -> None:
    assert_source_contract(LMDBSource(npy_db))


@pytest.mark.parametrize(
    ("values", "stored", "expected"),
    [
        (
            "npy",
            [npy_bytes(np.arange(3) * i) for i in range(4)],
            [np.arange(3) * i for i in range(4)],
        ),
        ("text", ["héllo".encode(), b"w", b"", "ünï".encode()], ["héllo", "w", "", "ünï"]),
        ("bytes", [b"\x00\xff", b"a", b"", b"\x80"], [b"\x00\xff", b"a", b"", b"\x80"]),
    ],
)
def test_values_pack_as_named(
    tmp_path: Path, values: str, stored: list[bytes], expected: list[object]
) -> None:
    db = write_lmdb(tmp_path / "db", {f"k{i}".encode(): v for i, v in enumerate(stored)})
    loadwise.pack(LMDBSource(db, values, field="x"), tmp_path / "packed", progress=False)
    with loadwise.open(tmp_path / "packed", "eager") as packed:
        batch = packed.get_batch(np.arange(4))
    assert batch["key"] == ["k0", "k1", "k2", "k3"]
    if values == "npy":
        np.testing.assert_array_equal(batch["x"].numpy(), np.stack(expected))  # type: ignore[arg-type]
    else:
        assert batch["x"] == expected


def test_images_are_decoded_by_pack(tmp_path: Path) -> None:
    db = write_lmdb(tmp_path / "db", {b"a": _png(1), b"b": _png(2)})
    source = LMDBSource(db)
    assert source.values == "image"
    loadwise.pack(source, tmp_path / "packed", progress=False)
    with loadwise.open(tmp_path / "packed", "eager") as packed:
        image = packed.get_batch([1])["value"][0]
    assert tuple(image.shape) == (3, 5, 7)
    np.testing.assert_array_equal(
        image.numpy(), np.asarray(Image.open(io.BytesIO(_png(2)))).transpose(2, 0, 1)
    )


def test_the_first_value_tells_the_kind() -> None:
    assert [sniff(v) for v in (npy_bytes(np.zeros(2)), _png(0), b"text", b"\xff\xfe")] == [
        "npy", "image", "text", "bytes",
    ]  # fmt: skip


def test_pickled_values_are_refused_and_named(tmp_path: Path) -> None:
    stored = {b"good": npy_bytes(np.zeros(2)), b"evil": pickle.dumps({"x": np.zeros(2)})}
    db = write_lmdb(tmp_path / "db", stored)
    with pytest.raises(
        SourceError, match="key `evil` .* is a Python pickle: loadwise never unpickles"
    ):
        loadwise.pack(LMDBSource(db, "npy"), tmp_path / "p1", progress=False)
    report = loadwise.pack(LMDBSource(db, "npy"), tmp_path / "p2", on_error="skip", progress=False)
    assert report.num_samples == 1 and report.skipped[0].item == "evil"
    first_is_pickle = write_lmdb(tmp_path / "db2", {b"a": pickle.dumps([1, 2])})
    with pytest.raises(SourceError, match="key `a` .* Python pickle"):
        LMDBSource(first_is_pickle)  # sniffing never unpickles either


def test_npy_object_arrays_are_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    np.save(out, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    db = write_lmdb(tmp_path / "db", {b"obj": out.getvalue(), b"ok": npy_bytes(np.zeros(1))})
    with pytest.raises(SourceError, match="key `obj` .* cannot be loaded without pickle"):
        loadwise.pack(LMDBSource(db, "npy"), tmp_path / "p", progress=False)


def test_many_readers_at_once_beyond_lmdbs_default_126(tmp_path: Path) -> None:
    """A locking environment has a reader table of 126 slots; ours opens without the lock."""
    db = write_lmdb(tmp_path / "db", {b"a": b"1"})
    file = LMDBFile(db)
    env = file.environment()
    transactions = [env.begin() for _ in range(200)]  # 200 readers at once
    assert all(t.get(b"a") == b"1" for t in transactions)
    for t in transactions:
        t.abort()
    file.close()  # the last user: the environment is closed, so it can be opened anew
    locking = lmdb.open(str(db), readonly=True)  # the default: lock=True, 126 readers
    try:
        with pytest.raises(lmdb.ReadersFullError):
            _ = [locking.begin() for _ in range(200)]
    finally:
        locking.close()


def test_the_environment_is_read_only(npy_db: Path) -> None:
    file = LMDBFile(npy_db)
    with pytest.raises(lmdb.ReadonlyError):
        file.environment().begin(write=True).put(b"x", b"y")
    file.close()


def test_not_an_lmdb_database(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not an LMDB database"):
        LMDBSource(tmp_path)


def test_features_come_back_per_key(npy_db: Path) -> None:
    rows = LMDBFile(npy_db).values(np.array([0, 299]))
    np.testing.assert_array_equal(np.load(io.BytesIO(rows[1])), columns()["features"][299])


def _child_reads(file: LMDBFile, send: object) -> None:
    from loadwise.sources import lmdb as module

    inherited = file.is_open
    value = file.values(np.array([3]))[0]
    send.send((inherited, module._OPEN_PID[0] == os.getpid(), value))  # type: ignore[attr-defined]


def test_a_forked_child_opens_its_own_environment(npy_db: Path) -> None:
    file = LMDBFile(npy_db)
    file.values(np.array([0]))  # the parent's environment is open
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        child = context.Process(target=_child_reads, args=(file, send))
        child.start()
    assert receive.poll(30)
    inherited, reopened, value = receive.recv()
    child.join(10)
    assert not inherited and reopened and value == npy_values()[b"key-0003"]
    assert file.values(np.array([3]))[0] == value  # the parent's still works
