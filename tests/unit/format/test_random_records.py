"""Issue 18, the closing property: any records ``pack`` accepts read back exactly in every
mode; anything else is refused at ``pack`` with a ``LoadwiseError`` — never another
exception, never a surprise at read.

Records are random: numeric arrays of any dtype (uint16, float16, bool, big-endian, and
dtypes no storage can hold: complex, float128, datetime64, strings), any shape (empty rows
too), Python numbers of any size, text (lone surrogates too), bytes, ``None``, nested dicts
and lists (ragged too), and random keys (``index``, a ragged field's ``_lengths``, numbers,
surrogates). Later records mostly repeat the first's kinds, sometimes not.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import loadwise
from loadwise.errors import LoadwiseError

MODES = ("eager", "lazy", "cached", "streaming")
STORED = (
    "u1",
    "i1",
    "<u2",
    ">u2",
    "<i2",
    "<u4",
    ">i4",
    "<i8",
    ">u8",
    "<f2",
    ">f4",
    "<f8",
    ">f8",
    "?",
)
UNSTORABLE = ("<c8", ">c16", "g", "M8[s]", "m8[ms]", "U3", "S2")
_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True)
_ODD_NAMES = st.one_of(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=6),
    st.sampled_from(["index", "v_lengths", "", "a\udc80"]),
    st.integers(-3, 3),
)
KEYS = st.integers(0, 15).flatmap(lambda n: _ODD_NAMES if n == 0 else _NAMES)  # 1 in 16 odd


def _arrays(dtype: str, shape: tuple[int, ...]) -> st.SearchStrategy[Any]:
    return hnp.arrays(
        np.dtype(dtype), shape, elements=None if dtype[-1] not in "SU" else st.just("a")
    )


@st.composite
def _kind(draw: st.DrawFn) -> Any:
    """How one field's values are drawn: a strategy that later records reuse."""
    choice = draw(st.integers(0, 19))
    if choice <= 10:
        dtype = draw(st.sampled_from(STORED if choice <= 9 else UNSTORABLE))
        side = draw(st.sampled_from([1, 1, 1, 1, 1, 0]))  # now and then rows of no values
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=side, max_side=3))
        return _arrays(dtype, shape)
    if choice <= 12:
        return st.one_of(st.integers(-(2**65), 2**65), st.floats(), st.booleans())
    if choice <= 14:
        return st.text(max_size=5) | st.sampled_from(["x\ud800", "\udc80"])
    if choice <= 16:
        return st.binary(max_size=6)
    if choice == 17:
        return st.lists(st.integers(0, 9), min_size=2, max_size=2).map(lambda v: [v, v])
    if choice == 18:
        return st.lists(st.lists(st.integers(0, 9), max_size=3), max_size=3)  # ragged nesting
    return st.none() | st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)


@st.composite
def records(draw: st.DrawFn) -> list[dict[Any, Any]]:
    kinds = draw(st.dictionaries(KEYS, _kind(), min_size=1, max_size=4))
    count = draw(st.integers(1, 5))
    out = []
    for _ in range(count):
        record = {key: draw(kind) for key, kind in kinds.items()}
        if draw(st.integers(0, 9)) == 0:  # now and then a record with other keys
            record[draw(KEYS)] = draw(draw(_kind()))
        out.append(record)
    return out


def _expected(value: Any) -> Any:
    """A value as it must come back: numbers as arrays in native byte order."""
    if isinstance(value, str | bytes):
        return value
    array = np.asarray(value)
    return array.astype(array.dtype.newbyteorder("="))


def _check_round_trip(recs: list[dict[Any, Any]], workers: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="lw-random-"))
    try:
        try:
            loadwise.pack(recs, folder / "d", workers=workers, progress=False)
        except LoadwiseError as exc:
            assert str(exc)  # refused at pack, saying why
            return
        for mode in MODES:
            with loadwise.open(folder / "d", mode) as data:
                batch = data.get_batch(np.arange(len(recs)))
            for key in recs[0]:
                for i, record in enumerate(recs):
                    want, got = _expected(record[key]), batch[key][i]
                    if isinstance(want, str | bytes):
                        assert got == want and type(got) is type(want), (mode, key, i)
                        continue
                    got = got.numpy()
                    assert (got.dtype, got.shape) == (want.dtype, want.shape), (mode, key, i)
                    assert got.tobytes() == want.tobytes(), (mode, key, i)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@settings(max_examples=60, **SETTINGS)  # type: ignore[arg-type]
@given(recs=records(), workers=st.sampled_from([1, 1, 1, 2]))
def test_random_records_round_trip_or_are_refused_at_pack(recs: Any, workers: int) -> None:
    _check_round_trip(recs, workers)


@pytest.mark.slow
@settings(max_examples=1500, **SETTINGS)  # type: ignore[arg-type]
@given(recs=records(), workers=st.sampled_from([1, 1, 1, 2]))
def test_many_random_records_round_trip_or_are_refused_at_pack(recs: Any, workers: int) -> None:
    _check_round_trip(recs, workers)
