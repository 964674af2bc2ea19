"""HDF5 read in place: handles per process across fork and spawn, files changed while open,
the chunk cache, and modes that need a packed dataset."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from tests.scientific import columns, write_hdf5
from torch.utils.data import DataLoader

import loadwise
from loadwise.access.inplace import InPlaceDataset, InPlaceStream
from loadwise.errors import IntegrityError, ModeError

h5py = pytest.importorskip("h5py")


@pytest.fixture
def h5(tmp_path: Path) -> Path:
    return write_hdf5(tmp_path / "data.h5")


def _all_labels(loader: DataLoader) -> dict[int, int]:
    pairs = ((i, y) for b in loader for i, y in zip(b["index"], b["labels"], strict=True))
    return {int(i): int(y) for i, y in pairs}


def test_a_file_opened_before_fork_reads_right_in_forked_workers(h5: Path) -> None:
    dataset = loadwise.open(h5, "lazy", fields=["images", "labels"])
    assert isinstance(dataset, InPlaceDataset)
    dataset.get_batch([0, 1])  # the parent's handle is open now
    assert dataset.reader.file.is_open
    loader = DataLoader(dataset, batch_size=16, num_workers=2, multiprocessing_context="fork")
    for _ in range(2):  # the parent keeps its handle; each worker opens its own
        assert _all_labels(loader) == dict(enumerate(columns()["labels"].tolist()))
    assert dataset.reader.file.is_open


def _child(dataset: InPlaceDataset, send: object) -> None:
    inherited = dataset.reader.file.is_open
    labels = dataset.get_batch([3, 4])["labels"].tolist()
    opened_here = dataset.reader.file._handle._pid == os.getpid()
    send.send((inherited, labels, opened_here))  # type: ignore[attr-defined]


def test_a_forked_child_never_uses_the_parents_handle(h5: Path) -> None:
    dataset = loadwise.open(h5, "lazy")
    dataset.get_batch([0])
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        child = context.Process(target=_child, args=(dataset, send))
        child.start()
    assert receive.poll(30)
    inherited, labels, opened_here = receive.recv()
    child.join(10)
    assert not inherited and opened_here
    assert labels == columns()["labels"][[3, 4]].tolist()


_SPAWNED = """
import sys
from torch.utils.data import DataLoader
import loadwise
dataset = loadwise.open(sys.argv[1], "lazy", fields=["labels"])
dataset.get_batch([0])  # the parent's handle is open when the worker is spawned
loader = DataLoader(dataset, batch_size=64, num_workers=1, multiprocessing_context="spawn")
print(sorted(int(i) * 100 + int(y) for b in loader for i, y in zip(b["index"], b["labels"])))
"""


def test_handles_never_pickle_and_spawned_workers_open_their_own(h5: Path) -> None:
    dataset = loadwise.open(h5, "lazy", fields=["labels"])
    dataset.get_batch([0])
    assert b"h5py" not in pickle.dumps(dataset)
    # in a fresh interpreter: spawning starts multiprocessing's resource tracker, which would
    # outlive this test as a child of the test process and be counted by memory tests
    done = subprocess.run([sys.executable, "-c", _SPAWNED, str(h5)], capture_output=True,
                          text=True, timeout=100, check=True)  # fmt: skip
    labels = columns()["labels"]
    assert done.stdout.strip() == str([i * 100 + int(labels[i]) for i in range(300)])


def test_a_file_replaced_while_open_is_refused(h5: Path, tmp_path: Path) -> None:
    dataset = loadwise.open(h5, "lazy")
    dataset.get_batch([0])
    write_hdf5(tmp_path / "other.h5", n=50).replace(h5)
    with pytest.raises(IntegrityError, match=r"data\.h5` was replaced by another file"):
        dataset.get_batch([1])


def test_a_file_truncated_while_open_is_refused(h5: Path) -> None:
    dataset = loadwise.open(h5, "streaming")
    assert isinstance(dataset, InPlaceStream)
    dataset.get_batch([0])
    with open(h5, "r+b") as handle:
        handle.truncate(os.path.getsize(h5) // 2)
    with pytest.raises(IntegrityError, match=r"data\.h5` was truncated \(\d[\d,]* -> \d"):
        dataset.get_batch([299])


def test_a_truncated_file_fails_to_read_with_the_files_name(h5: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.h5"
    shutil.copy(h5, cut)
    dataset = loadwise.open(cut, "lazy", fields=["images"])
    with open(cut, "r+b") as handle:
        handle.truncate(os.path.getsize(cut) - 2000)
    dataset.reader.file.signature = type(dataset.reader.file.signature).of(cut)  # as if opened so
    with pytest.raises(IntegrityError, match=r"cannot read dataset `images` of .*cut\.h5"):
        dataset.get_batch(np.arange(300))


def test_the_chunk_cache_is_sized_from_the_data(tmp_path: Path) -> None:
    from loadwise.sources.hdf5 import CACHE_LIMIT, HDF5File

    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("x", data=np.zeros((100, 10)), chunks=(10, 10))
    assert HDF5File(tmp_path / "plain.h5").cache_bytes == 0  # rows read straight from the file
    compressed = HDF5File(write_hdf5(tmp_path / "data.h5"))
    assert 0 < compressed.cache_bytes <= CACHE_LIMIT  # room for 16 compressed chunks


def test_modes_that_need_a_packed_dataset_say_how(h5: Path) -> None:
    with pytest.raises(ModeError, match=r"lazy or streaming, not 'eager'.*HDF5Source"):
        loadwise.open(h5, "eager")
    assert loadwise.open(h5, "auto").mode == "lazy"


def test_contiguous_datasets_are_read_straight_from_the_file(tmp_path: Path) -> None:
    from loadwise.sources.hdf5 import HDF5File

    path = write_hdf5(tmp_path / "flat.h5", chunks=None)
    file = HDF5File(path)
    assert sorted(file._direct) == ["images", "labels", "mean"]  # not chunked `features`
    rows = np.array([0, 1, 2, 17, 250, 299])
    np.testing.assert_array_equal(file.read_rows("images", rows), columns()["images"][rows])
    np.testing.assert_array_equal(file.read_slice("labels", 5, 9), columns()["labels"][5:9])
    with open(path, "r+b") as handle:  # cut into the images' data
        handle.truncate(file._direct["images"] + 100 * 90)
    file.signature = type(file.signature).of(path)  # as if it had been opened so
    with pytest.raises(IntegrityError, match=r"dataset `images` of .*flat\.h5`: rows 299-300"):
        file.read_rows("images", np.array([299]))
