"""HDF5, Zarr and LMDB read in place keep the mode contract and resume exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.contracts.compare import Columns
from tests.contracts.modes import assert_mode_contract
from tests.contracts.resume import assert_resumes_exactly
from tests.scientific import columns, npy_values, write_hdf5, write_lmdb, write_zarr

import loadwise

pytest.importorskip("h5py")
pytest.importorskip("zarr")
pytest.importorskip("lmdb")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Columns]]:
    folder = tmp_path_factory.mktemp("inplace")
    arrays = columns()
    keys = {"key": [k.decode() for k in npy_values()], "value": arrays["features"]}
    return {
        "hdf5": (write_hdf5(folder / "data.h5"), arrays),
        "zarr": (write_zarr(folder / "data.zarr"), arrays),
        "lmdb": (write_lmdb(folder / "data.lmdb", npy_values()), keys),
    }


@pytest.mark.parametrize("mode", ["lazy", "streaming"])
@pytest.mark.parametrize("kind", ["hdf5", "zarr", "lmdb"])
def test_read_in_place_keeps_the_mode_contract(
    files: dict[str, tuple[Path, Columns]], kind: str, mode: str
) -> None:
    path, expected = files[kind]
    assert_mode_contract(lambda: loadwise.open(path, mode, fields=list(expected)), expected)


@pytest.mark.parametrize(
    "mode",
    [pytest.param("lazy", marks=pytest.mark.slow), "streaming"],  # lazy: the packed sampler
)
def test_read_in_place_resumes_exactly(files: dict[str, tuple[Path, Columns]], mode: str) -> None:
    dataset = loadwise.open(files["hdf5"][0], mode, fields=["images", "labels"])
    assert_resumes_exactly(lambda **kw: loadwise.loader(dataset, seed=3, **kw))


def test_an_lmdb_database_replaced_while_open_is_refused(tmp_path: Path) -> None:
    from loadwise.errors import IntegrityError

    path = write_lmdb(tmp_path / "data.lmdb", npy_values(20))
    dataset = loadwise.open(path, "lazy")
    dataset.get_batch([0])
    write_lmdb(tmp_path / "other.lmdb", npy_values(30))
    (tmp_path / "other.lmdb" / "data.mdb").replace(path / "data.mdb")
    with pytest.raises(IntegrityError, match=r"data\.mdb` was replaced by another file"):
        dataset.get_batch([1])
    dataset.close()
