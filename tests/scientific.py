"""Real HDF5, Zarr and LMDB files written by the tests (h5py, zarr, lmdb), small and seeded."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

SAMPLES = 300


def columns(n: int = SAMPLES) -> dict[str, np.ndarray]:
    """Images, labels and float features: the arrays every file below holds."""
    rng = np.random.default_rng(11)
    return {
        "images": rng.integers(0, 256, (n, 3, 6, 5), dtype=np.uint8),
        "labels": (np.arange(n, dtype=np.int64) * 7) % 10,
        "features": rng.standard_normal((n, 4)).astype(np.float32),
    }


def write_hdf5(path: Path, n: int = SAMPLES, *, chunks: int | None = 32) -> Path:
    """``images`` chunked by ``chunks`` rows (contiguous if None), ``labels``, compressed
    ``features``, and a vlen-string ``names`` array and a short ``mean`` that are no fields."""
    import h5py

    data = columns(n)
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "images", data=data["images"], chunks=(chunks, 3, 6, 5) if chunks else None
        )
        f.create_dataset("labels", data=data["labels"])
        f.create_dataset("features", data=data["features"], chunks=(50, 4), compression="gzip")
        f.create_dataset("names", data=[f"s{i}" for i in range(n)], dtype=h5py.string_dtype())
        f.create_dataset("mean", data=np.zeros(3))
    return path


def write_zarr(path: Path, n: int = SAMPLES) -> Path:
    import zarr

    data = columns(n)
    group = zarr.open_group(path, mode="w")
    for name, array in data.items():
        chunks = (32, *array.shape[1:])
        group.create_array(name, shape=array.shape, chunks=chunks, dtype=array.dtype)[:] = array
    return path


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def write_lmdb(path: Path, values: dict[bytes, bytes]) -> Path:
    import lmdb

    env = lmdb.open(str(path), map_size=64 << 20)
    with env.begin(write=True) as txn:
        for key, value in values.items():
            txn.put(key, value)
    env.close()
    return path


def npy_values(n: int = SAMPLES) -> dict[bytes, bytes]:
    """``key-NNNN`` -> one feature row as .npy bytes."""
    features = columns(n)["features"]
    return {f"key-{i:04d}".encode(): npy_bytes(features[i]) for i in range(n)}
