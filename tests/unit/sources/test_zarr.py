"""``ZarrSource``: a Zarr group's arrays as fields, and zarr-python 3 after ``fork``."""

from __future__ import annotations

import multiprocessing
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from tests.contracts.sources import assert_source_contract
from tests.scientific import columns, write_zarr

from loadwise.errors import SourceError
from loadwise.sources.zarr import ZarrFile, ZarrSource

zarr = pytest.importorskip("zarr")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_zarr(tmp_path_factory.mktemp("zarr") / "data.zarr")


def test_zarr_source_keeps_the_contract(store: Path) -> None:
    assert_source_contract(ZarrSource(store, {"image": "images", "label": "labels"}))


def test_a_missing_array_lists_the_available_ones(store: Path) -> None:
    with pytest.raises(SourceError, match=r"no array `pixels`.*images \(300, 3, 6, 5\) uint8"):
        ZarrSource(store, ["pixels"])


def test_string_arrays_are_refused_where_a_field_is_expected(tmp_path: Path) -> None:
    group = zarr.open_group(tmp_path / "s.zarr", mode="w")
    group.create_array("names", shape=(4,), dtype=str)
    group.create_array("labels", shape=(4,), dtype="i8")
    with pytest.raises(SourceError, match="array `names` .* holds strings"):
        ZarrSource(tmp_path / "s.zarr", ["names", "labels"])


def test_not_a_zarr_store(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a Zarr store"):
        ZarrFile(tmp_path)


def _read_in_child(store: Path, send: object) -> None:
    file = ZarrFile(store)
    send.send(file.read_rows("labels", np.array([0, 5, 299])).tolist())  # type: ignore[attr-defined]


def test_a_child_forked_while_a_parent_thread_holds_zarrs_lock_still_reads(store: Path) -> None:
    """zarr 3 creates its I/O loop under a lock; a parent thread holding it at the fork would
    leave it held for ever in the child, whose first read then waits for ever."""
    from zarr.core import sync

    file = ZarrFile(store)
    file.read_rows("labels", np.array([1]))  # zarr's loop thread runs in this process
    release, held = threading.Event(), threading.Event()

    def hold() -> None:
        with sync._get_lock():
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    with warnings.catch_warnings():  # forking a threaded process is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        child = context.Process(target=_read_in_child, args=(store, send))
        child.start()
    try:
        assert receive.poll(30), "the forked child hung reading zarr"
        assert receive.recv() == columns()["labels"][[0, 5, 299]].tolist()
    finally:
        release.set()
        holder.join()
        child.join(10)
        if child.is_alive():
            child.kill()
