"""Values compared by kind, for every contract: arrays exactly, everything else by equality.

Tensors and numpy arrays (and numpy scalars) must match in dtype, shape and every element;
lists of ``str``/``bytes``, plain numbers and other values must be equal and of the same
type. A failure names the contract, the field and the first sample that differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

#: Expected samples: field name -> one value per global index (an array, a tensor or a list).
Columns = Mapping[str, Any]


def as_array(value: Any) -> np.ndarray | None:
    """``value`` as a numpy array if it is a tensor, an array or a numpy scalar, else None."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray | np.generic):
        return np.asarray(value)
    return None


def assert_same(got: Any, want: Any, what: str, samples: Sequence[int] | None = None) -> None:
    """``got`` equals ``want`` by kind; ``samples`` names the rows when they are a batch."""
    want_array = as_array(want)
    if want_array is None:
        assert type(got) is type(want), (
            f"{what}: got a {type(got).__name__}, expected a {type(want).__name__}"
        )
        if isinstance(want, list):
            assert got == want, f"{what}: {_difference(got, want, samples)}"
        assert got == want, f"{what}: got {got!r}, expected {want!r}"
        return
    got_array = as_array(got)
    assert got_array is not None, f"{what}: got a {type(got).__name__}, expected an array"
    assert got_array.dtype == want_array.dtype, (
        f"{what}: dtype {got_array.dtype}, expected {want_array.dtype}"
    )
    assert got_array.shape == want_array.shape, (
        f"{what}: shape {got_array.shape}, expected {want_array.shape}"
    )
    if not np.array_equal(got_array, want_array):
        rows = (got_array, want_array) if want_array.ndim else ([got_array], [want_array])
        raise AssertionError(f"{what}: values differ, {_difference(*rows, samples)}")


def column_length(columns: Columns) -> int:
    """The number of samples ``columns`` describe (every field has one value per sample)."""
    lengths = {name: len(column) for name, column in columns.items()}
    assert len(set(lengths.values())) == 1, f"expected columns differ in length: {lengths}"
    return next(iter(lengths.values()))


def rows_of(column: Any, indices: Sequence[int]) -> Any:
    """The values at ``indices`` as the same kind of column: an array, or a list."""
    array = as_array(column)
    if array is not None:
        return array[np.asarray(indices, dtype=np.int64)]
    return [column[i] for i in indices]


def indices_of(batch: Mapping[str, Any]) -> list[int]:
    """A batch's ``index`` field (the global position of each sample) as a list of ints."""
    assert "index" in batch, f"the batch has no `index` field: it has {sorted(batch)}"
    return [int(i) for i in np.asarray(as_array(batch["index"])).reshape(-1)]


def assert_batch_holds(
    batch: Mapping[str, Any], expected: Columns, indices: Any, what: str
) -> None:
    """``batch`` holds exactly samples ``indices`` of ``expected``, field by field, and its
    ``index`` says so."""
    wanted = [int(i) for i in np.asarray(indices).reshape(-1)]
    got = indices_of(batch)
    assert got == wanted, f"{what}: batch `index` is {short(got)}, expected {short(wanted)}"
    for name, column in expected.items():
        assert name in batch, f"{what}: the batch has no field `{name}`"
        assert_same(batch[name], rows_of(column, wanted), f"{what}: field `{name}`", wanted)


def assert_sample_holds(
    sample: Mapping[str, Any], expected: Columns, index: int, what: str
) -> None:
    """One sample (an item, not a batch) equals row ``index`` of ``expected``."""
    got = as_array(sample.get("index"))
    assert got is not None and int(got) == index, f"{what}: sample `index` {got}, expected {index}"
    for name, column in expected.items():
        assert name in sample, f"{what}: sample {index} has no field `{name}`"
        assert_same(sample[name], column[index], f"{what}: field `{name}` of sample {index}")


def _difference(got: Sequence[Any], want: Sequence[Any], samples: Any) -> str:
    """Where ``got`` and ``want`` first differ: the sample (by index if known) and both values."""
    for row, (a, b) in enumerate(zip(got, want, strict=False)):
        same = np.array_equal(np.asarray(a), np.asarray(b)) if as_array(b) is not None else a == b
        if not same:
            sample = samples[row] if samples is not None else row
            return f"first at sample {sample}: got {short(a)}, expected {short(b)}"
    return f"{len(got)} values, expected {len(want)}"


def short(value: Any, limit: int = 8) -> str:
    """``repr`` of a value, cut to its first ``limit`` items when it is long."""
    if isinstance(value, list) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} in all)"
    if isinstance(value, np.ndarray) and value.size > limit:
        return f"an array {value.shape} starting {value.reshape(-1)[:limit].tolist()}"
    return repr(value)
