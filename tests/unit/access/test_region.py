"""Lazy mode's one-range mapping: rows of any shard gathered at once, checked, unmapped."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import loadwise
from loadwise.access import region
from loadwise.errors import IntegrityError, LoadwiseError
from loadwise.format.fields import ArrayField
from loadwise.format.reader import MappedShard, read_manifest
from loadwise.stores import LocalStore

pytestmark = pytest.mark.skipif(not region.SUPPORTED, reason="POSIX mappings only")


def _rows_shard_by_shard(root: Path, name: str, indices: np.ndarray) -> np.ndarray:
    """The reference: each row read from its own shard's mapping."""
    manifest = read_manifest(root)
    starts = manifest.shard_starts()
    rows = []
    for i in indices.tolist():
        number = int(np.searchsorted(starts, i, side="right") - 1)
        shard = MappedShard(LocalStore(root), manifest.shards[number], manifest.fields, False)
        rows.append(shard.array(name)[i - starts[number]].copy())
        shard.close()
    return np.stack(rows)


def test_one_gather_matches_each_shards_rows(arrays_packed: Path) -> None:
    manifest = read_manifest(arrays_packed)
    assert len(manifest.shards) > 4  # the batch below spans shards
    idx = np.random.default_rng(1).permutation(manifest.num_samples)[:150]
    idx[:3] = [manifest.num_samples - 1, 0, manifest.num_samples - 1]
    arrays = [f for f in manifest.fields if isinstance(f, ArrayField)]
    mapped = region.ShardRegion(LocalStore(arrays_packed), manifest, tuple(arrays))
    try:
        for spec in arrays:
            got = mapped.gather(spec, idx.copy())
            assert got.dtype == np.dtype(spec.dtype) and got.shape == (150, *spec.shape)
            np.testing.assert_array_equal(got, _rows_shard_by_shard(arrays_packed, spec.name, idx))
    finally:
        mapped.close()


def test_a_shard_truncated_after_open_is_refused_when_first_mapped(
    arrays_packed: Path, tmp_path: Path
) -> None:
    root = tmp_path / "copy.loadwise"
    shutil.copytree(arrays_packed, root)
    manifest = read_manifest(root)
    last = manifest.shards[-1]
    with loadwise.open(root, "lazy") as dataset:
        dataset.get_batch([0, 1])  # maps the first shard only
        with open(root / last.name, "r+b") as handle:
            handle.truncate(last.num_bytes - 1)
        with pytest.raises(IntegrityError, match=last.name):
            dataset.get_batch([manifest.num_samples - 1])


def test_closed_range_refuses_reads(arrays_packed: Path) -> None:
    manifest = read_manifest(arrays_packed)
    spec = next(f for f in manifest.fields if isinstance(f, ArrayField))
    mapped = region.ShardRegion(LocalStore(arrays_packed), manifest, (spec,))
    kept = mapped.gather(spec, np.arange(5))
    want = _rows_shard_by_shard(arrays_packed, spec.name, np.arange(5))
    mapped.close()
    mapped.close()  # twice is fine
    with pytest.raises(LoadwiseError, match="closed"):
        mapped.gather(spec, np.arange(5))
    with pytest.raises(LoadwiseError, match="closed"):  # a shard not mapped yet stays unmapped
        mapped.gather(spec, np.array([manifest.num_samples - 1]))
    np.testing.assert_array_equal(kept, want)  # gathered rows are copies: still readable
