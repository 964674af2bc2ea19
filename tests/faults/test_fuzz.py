"""Fuzz: random bytes and hostile-but-consistent manifests give clean LoadwiseErrors, fast.

Random bytes as a manifest, random JSON under a valid embedded checksum, a real manifest
with random numbers and types written in (checksum recomputed, as an attacker would), and
random bytes as shards with matching checksums: opening and reading either works or raises
a ``LoadwiseError`` within a second. Never another exception, never a crash.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loadwise
from loadwise.errors import IntegrityError, LoadwiseError
from loadwise.format.spec import MANIFEST_NAME, _checksum, block_checksums

MODES = ("eager", "lazy", "cached", "streaming")
FUZZ = settings(
    max_examples=150,
    deadline=1000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.large_base_example],
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(5)
    columns = {
        "image": rng.integers(0, 256, (60, 2, 4, 4), dtype=np.uint8),
        "label": np.arange(60),
        "text": [f"t{i}" * (i % 4) for i in range(60)],
    }
    dest = tmp_path_factory.mktemp("fuzz") / "d"
    loadwise.pack(columns, dest, shard_bytes=1_500, block_bytes=512, progress=False)
    return dest


def _attempt(root: Path, mode: str) -> None:
    """Open and read the first and last samples; only LoadwiseError may escape, within 1 s."""
    started = time.monotonic()
    try:
        with loadwise.open(root, mode) as data:
            if len(data):
                data.get_batch([0, len(data) - 1])
    except LoadwiseError:
        pass
    assert time.monotonic() - started < 1.0


def _fresh(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "d"
    if target.exists():
        shutil.rmtree(target)
    return Path(shutil.copytree(pristine, target))


def _write_manifest(root: Path, body: Any) -> None:
    doc = {"format": "loadwise", "xxh3_64": _checksum(body) if isinstance(body, dict) else "0",
           "manifest": body}  # fmt: skip
    (root / MANIFEST_NAME).write_text(json.dumps(doc))


@FUZZ
@given(blob=st.binary(max_size=4096), mode=st.sampled_from(MODES))
def test_random_bytes_as_manifest(pristine: Path, tmp_path: Path, blob: bytes, mode: str) -> None:
    root = _fresh(pristine, tmp_path)
    (root / MANIFEST_NAME).write_bytes(blob)
    _attempt(root, mode)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(body=st.dictionaries(st.sampled_from(["version", "fields", "shards", "x"]), JSON))
def test_random_json_under_a_valid_checksum(
    pristine: Path, tmp_path: Path, body: dict[str, Any]
) -> None:
    root = _fresh(pristine, tmp_path)
    _write_manifest(root, {**body, "version": body.get("version", 2)})
    _attempt(root, "lazy")


NUMBER = st.integers(-(2**40), 2**64) | st.sampled_from([0, 1, 7, 8, 512, 4096, 2**31])


@FUZZ
@given(data=st.data(), mode=st.sampled_from(MODES))
def test_real_manifest_with_hostile_values(
    pristine: Path, tmp_path: Path, data: st.DataObject, mode: str
) -> None:
    root = _fresh(pristine, tmp_path)
    body = json.loads((root / MANIFEST_NAME).read_text())["manifest"]
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.sampled_from(["span", "count", "bytes", "dtype", "shape", "name"]))
        shard = data.draw(st.sampled_from(body["shards"]))
        field = data.draw(st.sampled_from(body["fields"]))
        if where == "span":
            span = data.draw(st.sampled_from(list(shard["buffers"][field["name"]].values())))
            span[data.draw(st.sampled_from(["offset", "length"]))] = data.draw(NUMBER)
        elif where == "count":
            shard["num_samples"] = data.draw(NUMBER)
        elif where == "bytes":
            shard["num_bytes"] = data.draw(NUMBER)
        elif where == "dtype":
            field["dtype"] = data.draw(
                st.sampled_from(["O", "V8", "<U3", "float128", "x", "int64"])
            )
        elif where == "shape":
            field["shape"] = data.draw(st.lists(NUMBER, max_size=3))
        else:
            shard["name"] = data.draw(st.sampled_from(["../x", "/etc/passwd", ".hidden", "a\\b"]))
    _write_manifest(root, body)
    _attempt(root, mode)


@FUZZ
@given(blobs=st.data(), mode=st.sampled_from(MODES))
def test_random_shards_with_matching_checksums(
    pristine: Path, tmp_path: Path, blobs: st.DataObject, mode: str
) -> None:
    root = _fresh(pristine, tmp_path)
    body = json.loads((root / MANIFEST_NAME).read_text())["manifest"]
    for shard in body["shards"]:
        size = shard["num_bytes"]
        blob = blobs.draw(st.binary(min_size=size, max_size=size))
        (root / shard["name"]).write_bytes(blob)
        shard["block_xxh3"] = list(block_checksums(blob, shard["block_bytes"]))
        shard["xxh3_64"] = xxhash.xxh3_64_hexdigest(blob)
    _write_manifest(root, body)
    _attempt(root, mode)


def test_text_read_from_a_wrong_offset_is_an_integrity_error(
    pristine: Path, tmp_path: Path
) -> None:
    """Found by the test above: a text buffer's offset moved into the shard's header (valid
    checksums, bytes that are not UTF-8) raised UnicodeDecodeError from inside the reader."""
    root = _fresh(pristine, tmp_path)
    body = json.loads((root / MANIFEST_NAME).read_text())["manifest"]
    body["shards"][1]["buffers"]["text"]["data"]["offset"] = 4
    _write_manifest(root, body)
    with loadwise.open(root, "eager") as data, pytest.raises(IntegrityError, match="not UTF-8"):
        data.get_batch(np.arange(len(data)))
