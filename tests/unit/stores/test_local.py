"""The local store: the manifest and shards of a folder, every failure named, no descriptor
left open."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from loadwise.errors import FormatError, IntegrityError
from loadwise.format.reader import load_manifest
from loadwise.stores import LocalStore, open_store


@pytest.fixture
def copy(arrays_packed: Path, tmp_path: Path) -> Path:
    shutil.copytree(arrays_packed, tmp_path / "d")
    return tmp_path / "d"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_reads_the_manifest_and_opens_shards_of_the_right_size(copy: Path) -> None:
    store = open_store(copy)
    assert isinstance(store, LocalStore) and store.location == str(copy.resolve())
    shard = load_manifest(store).shards[0]
    with store.open(shard.name, shard.num_bytes) as file:
        assert file.read(6, 0) == b"ARROW1"  # an Arrow IPC file
        mapped = file.map()
        assert mapped is not None and mapped[:6] == b"ARROW1"
        mapped.close()


def test_missing_manifest_and_folder_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="not a folder"):
        LocalStore(tmp_path / "nothing").read_manifest()
    with pytest.raises(FormatError, match="has no manifest.json.*loadwise pack"):
        LocalStore(tmp_path).read_manifest()


def test_missing_or_resized_shards_are_integrity_errors_and_leave_nothing_open(copy: Path) -> None:
    store = open_store(copy)
    shard = load_manifest(store).shards[0]
    before = _open_fds()
    with pytest.raises(IntegrityError, match=f"`{shard.name}` is .* the file is truncated"):
        store.open(shard.name, shard.num_bytes + 1)
    with pytest.raises(IntegrityError, match="longer than written"):
        store.check(shard.name, shard.num_bytes - 1)
    (copy / shard.name).unlink()
    with pytest.raises(IntegrityError, match=f"`{shard.name}` is missing"):
        store.open(shard.name, shard.num_bytes)
    assert _open_fds() == before


def test_a_file_that_shrinks_after_open_is_refused_on_read(copy: Path) -> None:
    store = open_store(copy)
    shard = load_manifest(store).shards[0]
    with store.open(shard.name, shard.num_bytes) as file:
        os.truncate(copy / shard.name, 10)
        with pytest.raises(IntegrityError, match="ended early"):
            file.read(100, 0)
        with pytest.raises(IntegrityError, match="ended early"):
            file.read_into(memoryview(bytearray(100)), 0)
