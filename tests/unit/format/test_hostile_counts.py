"""Issue 18: a manifest's counts are bounded by what its shards' bytes can hold, before
anything is sized by them; totals stay far below int64; nesting cannot exhaust the stack.

Each hostile manifest carries a valid checksum (as an attacker would write it), and every
mode must refuse it with a ``FormatError`` within a second, allocating nothing big.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loadwise
from loadwise.errors import FormatError
from loadwise.format.spec import MANIFEST_NAME, _checksum

MODES = ("eager", "lazy", "cached", "streaming")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("counts") / "d"
    loadwise.pack({"x": np.arange(40, dtype=np.uint8)}, dest, shard_bytes=16, progress=False)
    return dest


def _body(root: Path) -> dict[str, Any]:
    return json.loads((root / MANIFEST_NAME).read_text())["manifest"]


def _write(root: Path, body: dict[str, Any]) -> None:
    doc = {"format": "loadwise", "xxh3_64": _checksum(body), "manifest": body}
    (root / MANIFEST_NAME).write_text(json.dumps(doc))


def _refused(
    root: Path, match: str, seconds: float = 1.0, mib: int = 64, modes: tuple[str, ...] = MODES
) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for mode in modes:
        started = time.monotonic()
        with pytest.raises(FormatError, match=match):
            loadwise.open(root, mode)
        assert time.monotonic() - started < seconds
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    assert grown_kib < mib * 1024  # nothing sized by the claimed counts


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "d"))


def test_zero_byte_rows_with_a_huge_count_are_refused(copy: Path) -> None:
    body = _body(copy)
    body["fields"][0]["shape"] = [0]  # rows of no bytes: any count would "fit"
    for shard in body["shards"]:
        shard["num_samples"] = 2**48
        shard["buffers"]["x"]["values"]["length"] = 0
    _write(copy, body)
    _refused(copy, "malformed.*impossible shape")


def test_a_count_the_shard_cannot_hold_is_refused(copy: Path) -> None:
    body = _body(copy)
    body["shards"][0]["num_samples"] = 2**40  # one byte a row: the file holds a few hundred
    _write(copy, body)
    _refused(copy, r"malformed.*claims 1099511627776 samples, more than its \d+ bytes")


def test_totals_beyond_any_dataset_are_refused_not_overflowed(copy: Path) -> None:
    body = _body(copy)
    template = body["shards"][0]
    huge = 2**48
    template.update(num_samples=huge, num_bytes=huge, block_bytes=huge, block_xxh3=["0" * 16])
    template["buffers"]["x"]["values"] = {"offset": 0, "length": huge}
    body["shards"] = [dict(template, name=f"{i:05d}.arrow") for i in range(2**15 + 1)]
    _write(copy, body)  # 2**63 + 2**48 samples: int64 would wrap to negative
    # 7 MB of JSON to parse: time and memory go to that, not to the counts
    # (the manifest is read the same way by every mode: one is enough here)
    _refused(copy, r"malformed.*totals are beyond any", seconds=5.0, mib=512, modes=("lazy",))


def test_counts_must_be_integers(copy: Path) -> None:
    body = _body(copy)
    body["shards"][0]["num_samples"] = 3.7  # int() would quietly make it 3
    _write(copy, body)
    _refused(copy, "malformed.*not a count")


def test_deep_nesting_is_an_integrity_error_not_a_recursion_error(copy: Path) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    (copy / MANIFEST_NAME).write_text(f'{{"format": "loadwise", "manifest": {deep}}}')
    _refused(copy, "nested too deeply")
    body = _body_or_none(copy)
    assert body is None


def _body_or_none(root: Path) -> Any:
    try:
        return json.loads((root / MANIFEST_NAME).read_text())["manifest"]
    except RecursionError:
        return None


def test_a_manifest_without_fields_is_refused(copy: Path) -> None:
    body = _body(copy)
    body["fields"] = []
    for shard in body["shards"]:
        shard["buffers"] = {}
    _write(copy, body)
    _refused(copy, "malformed.*at least one")
