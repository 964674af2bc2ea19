"""pack with worker processes writes what one process writes, byte for byte: decoded rows
through shared memory (folders, arrays), pickled records (iterables), encoded images."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loadwise
from loadwise.errors import SourceError
from loadwise.format import writer
from loadwise.format.fields import ArrayField, StringField
from loadwise.format.reader import read_manifest
from loadwise.format.writer import ShardWriter
from loadwise.packing import slots
from loadwise.packing.pipeline import _FIRST


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


@pytest.fixture
def small_tasks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Tasks of 8 items (so 60 items make several, in several slots), counted as unpacked."""
    monkeypatch.setattr(slots, "ROWS", 8)
    calls: list[int] = []
    original = slots.unpack

    def counted(outcomes: Any, rows: Any, fields: Any) -> Iterator[slots.Piece]:
        calls.append(len(outcomes))
        return original(outcomes, rows, fields)

    monkeypatch.setattr(slots, "unpack", counted)
    return calls


@pytest.fixture
def damaged_tree(omniglot_tree: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """The 60-drawing tree with drawings 3 (prepared by the parent), 45 and 50 truncated."""
    root = tmp_path / "tree"
    shutil.copytree(omniglot_tree, root)
    files = sorted(root.glob("*/*/*.png"))
    for i in (3, 45, 50):
        files[i].write_bytes(files[i].read_bytes()[:60])
    return root, [str(files[i].relative_to(root)) for i in (3, 45, 50)]


def test_skip_writes_the_same_shards_and_manifest(
    damaged_tree: tuple[Path, list[str]], tmp_path: Path, small_tasks: list[int]
) -> None:
    root, bad = damaged_tree
    reports = [
        loadwise.pack(
            root, tmp_path / f"w{w}", shard_bytes=30_000, workers=w, on_error="skip", progress=False
        )
        for w in (1, 2)
    ]
    assert sum(small_tasks) == 60 - _FIRST and len(small_tasks) > 2  # the shared-memory path ran
    assert _files(tmp_path / "w1") == _files(tmp_path / "w2")
    assert [s.item for s in reports[1].skipped] == bad
    assert reports[1].num_samples == 57 and reports[1].num_shards > 3


def test_raise_names_the_first_unreadable_file_in_source_order(
    damaged_tree: tuple[Path, list[str]], tmp_path: Path, small_tasks: list[int]
) -> None:
    root, bad = damaged_tree
    files = sorted(root.glob("*/*/*.png"))
    shutil.copy(files[4], files[3])  # only the drawings the workers prepare stay damaged
    for workers in (1, 2):
        with pytest.raises(SourceError, match=bad[1]):
            loadwise.pack(root, tmp_path / "d", workers=workers, progress=False)
        assert not (tmp_path / "d").exists()
    assert small_tasks


def test_a_misfit_sample_from_a_worker_is_named(tmp_path: Path, small_tasks: list[int]) -> None:
    column = [np.zeros(4, np.float32)] * 60
    column[40] = np.zeros(5)
    with pytest.raises(SourceError, match=r"sample `40` field `x` has dtype float64, shape \(5,\)"):
        loadwise.pack({"x": column}, tmp_path / "d", workers=2, progress=False)
    assert small_tasks


def test_arrays_and_iterables_with_workers(tmp_path: Path, small_tasks: list[int]) -> None:
    rng = np.random.default_rng(0)
    columns = {
        "x": rng.random((70, 3)),
        "flag": rng.random(70) > 0.5,
        "name": [f"s{i}" * (i % 5) for i in range(70)],
    }
    records = [{k: v[i] for k, v in columns.items()} for i in range(70)]
    for name, source in (("arrays", columns), ("iterable", records)):
        for workers in (1, 2):
            loadwise.pack(
                source,
                tmp_path / f"{name}{workers}",
                shard_bytes=400,
                workers=workers,
                progress=False,
            )
        assert _files(tmp_path / f"{name}1") == _files(tmp_path / f"{name}2")
    assert sum(small_tasks) == 70 - _FIRST  # arrays went through shared memory, iterables not


def test_encoded_images_with_workers(class_tree: Path, tmp_path: Path) -> None:
    for workers in (1, 2):
        loadwise.pack(
            class_tree,
            tmp_path / f"e{workers}",
            encoded=True,
            shard_bytes=5_000,
            workers=workers,
            progress=False,
        )
    assert _files(tmp_path / "e1") == _files(tmp_path / "e2")
    assert len(read_manifest(tmp_path / "e2").shards) > 1


def test_add_rows_cuts_the_shards_add_cuts(tmp_path: Path) -> None:
    fields = (ArrayField("x", "int16", (3,)), StringField("s"))
    rng = np.random.default_rng(1)
    x = rng.integers(0, 100, (200, 3)).astype(np.int16)
    s = ["z" * int(n) for n in rng.integers(0, 30, 200)]
    items = [str(i) for i in range(200)]
    one = ShardWriter(tmp_path / "one", fields, 300)
    many = ShardWriter(tmp_path / "many", fields, 300)
    for d in ("one", "many"):
        (tmp_path / d).mkdir()
    cut = [one.add({"x": x[i], "s": s[i]}, items[i]) for i in range(200)]
    got, start = [], 0
    for stop in (7, 8, 60, 61, 200):
        while start < stop:
            taken, shard = many.add_rows(
                {"x": x[start:stop]}, {"s": s[start:stop]}, items[start:stop]
            )
            got += [None] * (taken - 1) + [shard]
            start += taken
    assert [c is not None for c in cut] == [g is not None for g in got]
    one.flush(), many.flush()
    assert _files(tmp_path / "one") == _files(tmp_path / "many")


def test_a_huge_shard_size_is_not_allocated_up_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "_FIRST_BYTES", 1000)  # so the row buffer grows, too
    data = {"x": np.arange(3000 * 64, dtype=np.uint8).reshape(3000, 64)}
    report = loadwise.pack(data, tmp_path / "d", shard_bytes=1 << 50, workers=2, progress=False)
    assert report.num_shards == 1
    assert np.array_equal(
        loadwise.open(tmp_path / "d", "eager").get_batch([2999])["x"][0], data["x"][-1]
    )
