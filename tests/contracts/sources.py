"""The contract every source keeps, as one helper: ``assert_source_contract``.

A source gives ``pack`` named records in a fixed order. The helper proves: ``len`` is the
number of items; item names are unique; ``describe()`` is a dict naming its ``kind``; for
sources with ``records(start, stop)``, any range equals that slice of the iteration
(``records(0, n)`` the whole of it); a forked child process reads the same records as the
parent; and packing the source, then opening it, gives back every plain value (arrays,
numbers, ``str``, ``bytes``) of every record.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tests.contracts.compare import as_array, assert_same, short

import loadwise

Items = list[tuple[str, dict[str, Any]]]
PLAIN = (np.ndarray, np.generic, int, float, str, bytes)


def assert_source_contract(source: Any) -> None:
    """Every check of the source contract on ``source`` (iterated several times)."""
    items = list(source)
    assert len(items) >= 2, f"source: give a source of 2 items at least, not {len(items)}"
    assert len(source) == len(items), f"len: {len(source)}, but iterating gave {len(items)} items"
    names = [name for name, _ in items]
    assert len(set(names)) == len(names), f"item names: not unique, e.g. {_repeated(names)!r}"
    described = source.describe()
    assert isinstance(described, dict) and described.get("kind"), (
        f"describe(): {described!r} is not a dict naming its `kind`"
    )
    if hasattr(source, "records"):
        _ranges_are_slices(source, items)
    _forked_child_reads_the_same(source, items)
    _packs_back_to_its_values(source, items)


def assert_same_items(got: Items, want: Items, what: str) -> None:
    """Same item names in the same order, each record with the same fields and values."""
    got_names, want_names = [n for n, _ in got], [n for n, _ in want]
    assert got_names == want_names, (
        f"{what}: items {short(got_names)}, expected {short(want_names)}"
    )
    for (name, record), (_, expected) in zip(got, want, strict=True):
        assert sorted(record) == sorted(expected), f"{what}: item {name!r} has other fields"
        for field, value in expected.items():
            assert_same(record[field], value, f"{what}: field `{field}` of item {name!r}")


def _ranges_are_slices(source: Any, items: Items) -> None:
    n = len(items)
    ranges = {(0, n), (0, 0), (0, 1), (n - 1, n), (n, n), (1, n - 1), (n // 3, 2 * n // 3)}
    rng = np.random.default_rng(5)
    ranges |= {tuple(sorted(int(v) for v in rng.integers(0, n + 1, 2))) for _ in range(4)}
    for start, stop in sorted(ranges):
        got = list(source.records(start, stop))
        assert_same_items(got, items[start:stop], f"records({start}, {stop})")


def _forked_child_reads_the_same(source: Any, items: Items) -> None:
    start, stop = (1, len(items)) if hasattr(source, "records") else (0, len(items))
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_read_in_child, args=(source, start, stop, send))
    with warnings.catch_warnings():  # Python 3.12 warns that forking a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)  # may deadlock: forking is the point
        child.start()
    send.close()
    try:
        assert receive.poll(60), "forked child: sent nothing within 60 s"
        status, read = receive.recv()
    finally:
        receive.close()
        child.join(10)
        if child.is_alive():  # stuck: end our own child, not the test run
            child.kill()
            child.join()
    assert status == "ok", f"forked child: reading records raised {read}"
    assert_same_items(read, items[start:stop], "records read in a forked child")


def _read_in_child(source: Any, start: int, stop: int, send: Any) -> None:
    """In the forked child: read the items (a range, or all) and send them to the parent."""
    try:
        items = list(source.records(start, stop) if hasattr(source, "records") else source)
        send.send(("ok", items))
    except BaseException as exc:  # reported by the parent, which owns the test
        send.send(("error", repr(exc)))


def _packs_back_to_its_values(source: Any, items: Items) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        loadwise.pack(source, Path(tmp) / "packed", progress=False)
        with loadwise.open(Path(tmp) / "packed", "eager", ragged="list") as packed:  # as stored
            assert len(packed) == len(items), f"packed: {len(packed)} samples, not {len(items)}"
            batch = packed.get_batch(np.arange(len(items)))
    for i, (name, record) in enumerate(items):
        for field, value in record.items():
            if isinstance(value, PLAIN):
                _assert_packed(batch[field][i], value, f"packed field `{field}` of item {name!r}")


def _assert_packed(got: Any, value: Any, what: str) -> None:
    """Arrays come back with their dtype and shape; numbers, ``str`` and ``bytes`` by value."""
    if as_array(value) is not None:
        assert_same(got, value, what)
        return
    got_value = got.item() if as_array(got) is not None else got
    assert got_value == value and type(got_value) is type(value), (
        f"{what}: got {got_value!r}, expected {value!r}"
    )


def _repeated(names: list[str]) -> str:
    return next(name for name, count in Counter(names).items() if count > 1)
