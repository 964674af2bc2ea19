"""The ragged kind: variable-length arrays round-trip through pack and every mode, as padded
batches with lengths or as lists; bad values are refused at pack, naming the sample."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loadwise
from loadwise.errors import ConfigError, SourceError
from loadwise.format.fields import RaggedField
from loadwise.gather.spans import padded_take

MODES = ("eager", "lazy", "cached", "streaming")
DTYPES = ("int32", "int64", "uint8", "float32", "float16", "bool")


def _values(dtype: str, lengths: list[int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        raw = (
            rng.integers(-1000, 1000, n) if np.dtype(dtype).kind in "if" else rng.integers(0, 2, n)
        )
        out.append(raw.astype(dtype))
    return out


def _check_batch(batch: dict, values: list[np.ndarray], idx: np.ndarray, dtype: str) -> None:
    lengths = batch["tokens_lengths"].numpy()
    padded = batch["tokens"].numpy()
    assert padded.dtype == np.dtype(dtype)
    assert lengths.tolist() == [len(values[i]) for i in idx]
    assert padded.shape == (len(idx), max((len(values[i]) for i in idx), default=0))
    for row, i in enumerate(idx.tolist()):
        np.testing.assert_array_equal(padded[row, : lengths[row]], values[i])
        assert not padded[row, lengths[row] :].any(), "padding is zero"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dtype=st.sampled_from(DTYPES),
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=60),
    seed=st.integers(0, 2**16),
    shard_bytes=st.sampled_from([1, 64, 10_000]),
)
def test_ragged_round_trips_through_every_mode(
    dtype: str, lengths: list[int], seed: int, shard_bytes: int
) -> None:
    values = _values(dtype, lengths, seed)
    idx = np.random.default_rng(seed).integers(0, len(values), min(len(values), 17))
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "d"
        records = [{"tokens": v, "label": i} for i, v in enumerate(values)]
        schema = [RaggedField("tokens", dtype)]
        loadwise.pack(records, dest, schema=schema, shard_bytes=shard_bytes, progress=False)
        for mode in MODES:
            with loadwise.open(dest, mode) as ds:
                _check_batch(ds.get_batch(idx), values, idx, dtype)
            with loadwise.open(dest, mode, ragged="list") as ds:
                got = ds.get_batch(idx)["tokens"]
                assert [t.dtype for t in got] == [getattr(torch, dtype)] * len(idx)
                for tensor, i in zip(got, idx.tolist(), strict=True):
                    np.testing.assert_array_equal(tensor.numpy(), values[i])


def test_ragged_batches_through_the_loader_with_workers(tmp_path: Path) -> None:
    values = _values("int32", [int(n) for n in np.random.default_rng(0).integers(0, 30, 200)], 1)
    loadwise.pack(
        [{"tokens": v} for v in values],
        tmp_path / "d",
        schema=[RaggedField("tokens", "int32")],
        shard_bytes=500,
        progress=False,
    )
    with loadwise.open(tmp_path / "d", "lazy") as ds:
        seen = []
        for batch in loadwise.loader(ds, 32, seed=3, num_workers=2):
            _check_batch(batch, values, batch["index"].numpy(), "int32")
            seen += batch["index"].tolist()
    assert sorted(seen) == list(range(200))


def test_padded_take_near_the_end_of_the_values() -> None:
    """Rows that cannot have a full-width row before the end take the per-element path."""
    values = np.arange(10, dtype=np.int64)
    starts, lengths = np.array([0, 8, 6, 9, 10]), np.array([5, 2, 4, 1, 0])
    got = padded_take(values, starts, lengths, pad=-1)
    assert got.tolist() == [
        [0, 1, 2, 3, 4],
        [8, 9, -1, -1, -1],
        [6, 7, 8, 9, -1],
        [9, -1, -1, -1, -1],
        [-1, -1, -1, -1, -1],
    ]


def test_python_lists_are_cast_when_no_value_changes(tmp_path: Path) -> None:
    loadwise.pack(
        [{"ids": [1, 2, 3]}, {"ids": []}],
        tmp_path / "d",
        schema=[RaggedField("ids", "int16")],
        progress=False,
    )
    batch = loadwise.open(tmp_path / "d", "eager").get_batch([0, 1])
    assert batch["ids"].dtype == torch.int16 and batch["ids_lengths"].tolist() == [3, 0]


@pytest.mark.parametrize(
    ("value", "dtype", "match"),
    [
        (np.zeros((2, 2), np.int32), "int32", "shape \\(2, 2\\); this ragged field holds 1-D"),
        ([70000], "int16", "int64 values that change when stored as int16"),
        (["a", "b"], "int32", "dtype <U1"),
    ],
)
def test_bad_ragged_values_are_refused_naming_the_sample(
    tmp_path: Path, value: object, dtype: str, match: str
) -> None:
    records = [{"ids": [1]}, {"ids": value}]
    with pytest.raises(SourceError, match=f"sample `1` field `ids`.*{match}"):
        loadwise.pack(records, tmp_path / "d", schema=[RaggedField("ids", dtype)], progress=False)


def test_an_unknown_ragged_output_is_refused(tmp_path: Path) -> None:
    loadwise.pack(
        [{"ids": [1]}], tmp_path / "d", schema=[RaggedField("ids", "int32")], progress=False
    )
    with pytest.raises(ConfigError, match="padded, list"):
        loadwise.open(tmp_path / "d", "lazy", ragged="dense")
