"""``HDF5Source``: arrays of one length as fields, refusals naming what the file holds, and
``pack`` from it (also with forked workers, which must open the file themselves)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from tests.contracts.sources import assert_source_contract
from tests.scientific import columns, write_hdf5

import loadwise
from loadwise.errors import IntegrityError, MissingExtraError, SourceError
from loadwise.sources.hdf5 import HDF5File, HDF5Source

h5py = pytest.importorskip("h5py")


@pytest.fixture(scope="module")
def h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hdf5(tmp_path_factory.mktemp("hdf5") / "data.h5")


def test_hdf5_source_keeps_the_contract(h5: Path) -> None:
    assert_source_contract(HDF5Source(h5, {"image": "images", "label": "labels"}))


def test_by_default_every_numeric_array_of_the_file_length(h5: Path) -> None:
    source = HDF5Source(h5)
    assert sorted(source.columns) == ["features", "images", "labels"]  # not names, not mean
    name, record = next(iter(source))
    assert name == "0" and record["images"].shape == (3, 6, 5)


def test_pack_with_forked_workers_reads_every_row(h5: Path, tmp_path: Path) -> None:
    loadwise.pack(HDF5Source(h5), tmp_path / "packed", workers=2, progress=False)
    with loadwise.open(tmp_path / "packed", "eager") as packed:
        batch = packed.get_batch(np.arange(len(packed)))
    for name, values in columns().items():
        np.testing.assert_array_equal(batch[name].numpy(), values)


def test_a_missing_dataset_lists_the_available_ones(h5: Path) -> None:
    with pytest.raises(SourceError, match=r"no array `imgs`.*images \(300, 3, 6, 5\) uint8"):
        HDF5Source(h5, {"image": "imgs"})


def test_arrays_of_unequal_length_are_refused(h5: Path) -> None:
    with pytest.raises(SourceError, match=r"differ in length.*'mean': 3.*'labels': 300"):
        HDF5Source(h5, ["mean", "labels"])


def test_a_file_with_no_common_length_asks_for_fields(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"], f["b"] = np.zeros(3), np.zeros(4)
    with pytest.raises(SourceError, match="no common length.*pass `fields=`"):
        HDF5Source(tmp_path / "two.h5")


@pytest.mark.parametrize(
    ("dtype", "message"),
    [
        (h5py.string_dtype(), "variable-length strings"),
        (h5py.vlen_dtype(np.int32), "variable-length sequences"),
        (np.dtype([("x", "f4"), ("y", "i4")]), r"a compound record dtype \(x, y\)"),
        (np.dtype("S4"), "strings"),
    ],
)
def test_non_numeric_arrays_are_refused_where_a_field_is_expected(
    tmp_path: Path, dtype: np.dtype, message: str
) -> None:
    with h5py.File(tmp_path / "odd.h5", "w") as f:
        f.create_dataset("odd", shape=(5,), dtype=dtype)
        f["labels"] = np.arange(5)
    with pytest.raises(SourceError, match=f"array `odd` of .*holds {message}"):
        HDF5Source(tmp_path / "odd.h5", ["odd", "labels"])
    assert list(HDF5Source(tmp_path / "odd.h5").columns) == ["labels"]  # left out by default


def test_a_file_replaced_after_the_source_was_made_is_refused(tmp_path: Path) -> None:
    path = write_hdf5(tmp_path / "data.h5")
    source = HDF5Source(path)
    write_hdf5(tmp_path / "new.h5", n=100).replace(path)
    with pytest.raises(IntegrityError, match="was replaced by another file"):
        next(iter(source))


def test_not_an_hdf5_file(tmp_path: Path) -> None:
    (tmp_path / "fake.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(SourceError, match="not a readable HDF5 file"):
        HDF5File(tmp_path / "fake.h5")


@pytest.mark.parametrize("module", ["h5py", "zarr", "lmdb"])
def test_a_missing_library_names_its_extra(
    module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loadwise.sources.handles import import_extra

    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    extra = {"h5py": "hdf5"}.get(module, module)
    with pytest.raises(MissingExtraError, match=rf"pip install 'loadwise\[{extra}\]'"):
        import_extra(module, extra)
