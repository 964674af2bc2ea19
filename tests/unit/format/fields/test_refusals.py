"""Issue 18: records are stored exactly or refused at ``pack`` with a message naming the field
and the fix; never a silent drop, overwrite or conversion, never a surprise at read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import torch
from tests.contracts.modes import assert_mode_contract

import loadwise
from loadwise.errors import ConfigError, SourceError
from loadwise.format import RaggedField
from loadwise.format.reader import load_manifest

MODES = ("eager", "lazy", "cached", "streaming")


def _pack(tmp_path: Path, source: Any, **options: Any) -> Path:
    dest = tmp_path / "d"
    loadwise.pack(source, dest, progress=False, **options)
    return dest


def test_big_endian_arrays_are_stored_little_endian_with_their_values(tmp_path: Path) -> None:
    values = np.arange(-50, 50, dtype=">i4").reshape(25, 4)
    floats = np.linspace(-1, 1, 25, dtype=">f8")
    dest = _pack(tmp_path, {"x": values, "f": floats, "r": list(values.astype(">i2"))},
                 schema=[RaggedField("r", ">i2")])  # fmt: skip
    fields = {f.name: f for f in load_manifest(dest).fields}
    assert fields["x"].dtype == "int32" and fields["f"].dtype == "float64"  # type: ignore[attr-defined]
    assert fields["r"].dtype == "int16"  # type: ignore[attr-defined]
    for mode in MODES:
        with loadwise.open(dest, mode) as data:
            batch = data.get_batch(np.arange(25))
            assert batch["x"].numpy().tolist() == values.tolist()
            assert batch["f"].numpy().tolist() == floats.tolist()
            assert batch["r"].numpy().tolist() == values.astype(np.int16).tolist()
    shard = next(dest.glob("*.arrow"))
    table = pa.ipc.open_file(pa.memory_map(str(shard))).read_all()  # other Arrow readers agree
    assert table.column("f").to_pylist() == floats.tolist()


def test_big_endian_samples_of_an_iterable_match_little_endian_ones(tmp_path: Path) -> None:
    records = [{"x": np.array([i, -i], dtype="<i8" if i % 2 else ">i8")} for i in range(6)]
    dest = _pack(tmp_path, records)
    with loadwise.open(dest, "lazy") as data:
        assert data.get_batch(np.arange(6))["x"][:, 1].tolist() == [0, -1, -2, -3, -4, -5]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.arange(3) + 1j, r"complex.*np\.stack"),
        (np.ones(3, np.longdouble), r"float128.*convert to float64"),
        (np.arange(3).astype("datetime64[ms]"), r"datetime64\[ms\].*astype\('int64'\).*`ms`"),
        (np.arange(3).astype("timedelta64[s]"), r"timedelta64\[s\].*astype\('int64'\)"),
        (torch.zeros(3, dtype=torch.bfloat16), r"torch tensor numpy cannot hold.*\.float\(\)"),
        (np.array(["a", "b"]), r"an array of str.*store one per field"),
        (None, r"is None; loadwise stores no missing values"),
        ({"a": 1}, r"is a dict.*flatten"),
        ([[1, 2], [3]], r"not an array of one dtype and shape.*RaggedField"),
        (np.zeros((4, 0)), r"shape \(4, 0\).*no values.*RaggedField"),
    ],
)
def test_values_that_cannot_be_stored_are_refused_at_pack(
    tmp_path: Path, value: Any, match: str
) -> None:
    with pytest.raises(SourceError, match=rf"sample `0`.*field `v`.*{match}"):
        _pack(tmp_path, [{"v": value, "ok": 1}, {"v": value, "ok": 2}])
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("later", [None, "text", np.zeros(2, ">f4"), np.arange(3).astype("M8[s]")])
def test_a_later_sample_that_differs_is_refused_naming_it(tmp_path: Path, later: Any) -> None:
    records: list[dict[str, Any]] = [{"v": np.zeros(2, np.float32)} for _ in range(4)]
    records[2]["v"] = later
    if isinstance(later, np.ndarray) and later.dtype.byteorder == ">":
        _pack(tmp_path, records)  # the same values in the other byte order: fine
        return
    with pytest.raises(SourceError, match=r"sample `2`.*field `v`"):
        _pack(tmp_path, records)


def test_columns_are_checked_before_anything_is_read(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"field `x` has shape \(1000, 0\)"):
        loadwise.sources.ArraySource({"x": np.zeros((1000, 0)), "y": np.arange(1000)})
    with pytest.raises(SourceError, match=r"field `x` holds complex128"):
        loadwise.sources.ArraySource({"x": np.zeros(1000, complex)})


@pytest.mark.parametrize(
    ("key", "match"),
    [
        (1, r"field named 1; field names are non-empty printable strings"),
        ("", r"field named ''"),
        ("bad\udc80", r"not valid text \(a lone surrogate\)"),
        ("index", r"`index`, but batches use that name for the index"),
    ],
)
def test_field_names_a_batch_cannot_hold_are_refused(tmp_path: Path, key: Any, match: str) -> None:
    with pytest.raises(SourceError, match=match):
        _pack(tmp_path, [{key: 1, "ok": 2}] * 2)


def test_a_ragged_fields_lengths_entry_cannot_be_shadowed(tmp_path: Path) -> None:
    records = [{"tokens": np.arange(i + 1), "tokens_lengths": 7} for i in range(3)]
    with pytest.raises(SourceError, match=r"`tokens_lengths`.*field `tokens`'s lengths"):
        _pack(tmp_path, records, schema=[RaggedField("tokens", "int64")])


def test_lone_surrogates_in_text_are_refused_naming_the_sample(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"sample `1` field `t` is not valid text"):
        _pack(tmp_path, [{"t": "fine"}, {"t": "bad \ud800"}])


@pytest.mark.parametrize("workers", [1, 2])
def test_fields_first_seen_in_later_samples_are_refused_not_dropped(
    tmp_path: Path, workers: int
) -> None:
    columns = {"x": np.zeros((600, 2), np.float32)}
    records = [{"x": columns["x"][i]} for i in range(600)]
    records[450]["extra"] = 1.0  # past the first chunk and slot: the workers' path too
    with pytest.raises(SourceError, match=r"sample `450` has field\(s\) \['extra'\].*lack"):
        _pack(tmp_path, records, workers=workers)

    class Indexed(loadwise.sources.ArraySource):  # an indexed source: forked shared slots
        def records(self, start: int, stop: int) -> Any:
            for name, record in super().records(start, stop):
                yield name, record | ({"extra": 1.0} if name == "450" else {})

    with pytest.raises(SourceError, match=r"sample `450` has field\(s\) \['extra'\]"):
        loadwise.pack(Indexed(columns), tmp_path / "e", workers=workers, progress=False)


def test_a_missing_field_and_a_none_are_told_apart(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"sample `1` has no field `b`"):
        _pack(tmp_path, [{"a": 1, "b": 2}, {"a": 1}])
    with pytest.raises(SourceError, match=r"sample `1` field `b` is None"):
        _pack(tmp_path, [{"a": 1, "b": "x"}, {"a": 1, "b": None}])


def test_declared_fields_with_unstorable_dtypes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="field `t` is declared with complex64"):
        RaggedField("t", "complex64")
    with pytest.raises(ConfigError, match="numpy does not know"):
        RaggedField("t", "nonsense")


@pytest.fixture(scope="module")
def odd_dtypes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """uint16, float16, bool and big-endian columns over several shards."""
    rng = np.random.default_rng(3)
    given = {
        "u16": rng.integers(0, 65536, (90, 2, 3)).astype(np.uint16),
        "be": rng.integers(-(2**31), 2**31, 90).astype(">i4"),
        "f16": rng.standard_normal(90).astype(np.float16),
        "flag": rng.random(90) > 0.5,
    }
    dest = tmp_path_factory.mktemp("odd") / "d"
    loadwise.pack(given, dest, shard_bytes=400, progress=False)
    return dest, given | {"be": given["be"].astype(np.int32)}  # read back little-endian


@pytest.mark.parametrize("mode", MODES)
def test_uint16_float16_bool_and_big_endian_keep_the_mode_contract(
    odd_dtypes: tuple[Path, dict[str, Any]], mode: str
) -> None:
    packed, expected = odd_dtypes
    assert_mode_contract(lambda: loadwise.open(packed, mode), expected)
