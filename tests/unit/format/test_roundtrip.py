"""Property: whatever arrays go into pack come back out of every mode, bit for bit."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import loadwise

DTYPES = st.sampled_from(["uint8", "int16", "int32", "int64", "float32", "float64", "bool"])
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


@st.composite
def columns(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(1, 40))
    out: dict[str, object] = {}
    for i in range(draw(st.integers(1, 3))):
        dtype, shape = draw(DTYPES), draw(SHAPES)
        out[f"f{i}"] = draw(hnp.arrays(dtype, (n, *shape)))
    out["text"] = draw(st.lists(st.text(max_size=6), min_size=n, max_size=n))
    out["blob"] = draw(st.lists(st.binary(max_size=10), min_size=n, max_size=n))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns(), st.integers(16, 400), st.sampled_from(["eager", "lazy", "cached", "streaming"]))
def test_pack_then_read_returns_the_same_values(data, shard_bytes, mode) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "d"
        loadwise.pack(data, dest, shard_bytes=shard_bytes, progress=False)
        ds = loadwise.open(dest, mode)
        n = len(data["text"])
        order = np.random.default_rng(0).permutation(n)
        batch = ds.get_batch(order)
        for name, values in data.items():
            if isinstance(values, np.ndarray):
                got = batch[name].numpy()
                assert got.dtype == values.dtype
                np.testing.assert_array_equal(got, values[order])
            else:
                assert batch[name] == [values[i] for i in order]
        ds.close()
