"""Per-block checksums: a read verifies only the blocks under its samples, and never serves
a byte from a damaged block; the error names the sample and the shard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import loadwise
from loadwise.errors import IntegrityError
from loadwise.format.reader import read_manifest

SAMPLES, ROW = 400, 512  # 200 KiB per field; 4 KiB blocks -> 8 samples per block


@pytest.fixture
def blocked(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    columns = {
        "x": rng.integers(0, 256, (SAMPLES, ROW), dtype=np.uint8),
        "name": [f"n{i}" * (i % 5 + 1) for i in range(SAMPLES)],
    }
    dest = tmp_path / "d"
    loadwise.pack(columns, dest, shard_bytes=120_000, block_bytes=4096, progress=False)
    return dest


def _flip_under_sample(root: Path, sample: int) -> None:
    manifest = read_manifest(root)
    starts = manifest.shard_starts()
    number = int(np.searchsorted(starts, sample, side="right") - 1)
    shard = manifest.shards[number]
    at = shard.buffers["x"]["values"].offset + (sample - int(starts[number])) * ROW + 7
    path = root / shard.name
    data = bytearray(path.read_bytes())
    data[at] ^= 0x10
    path.write_bytes(bytes(data))


def test_manifest_has_block_checksums_covering_each_shard(blocked: Path) -> None:
    manifest = read_manifest(blocked)
    assert len(manifest.shards) >= 2
    for shard in manifest.shards:
        assert shard.block_bytes == 4096
        assert len(shard.block_xxh3) == -(-shard.num_bytes // 4096)


@pytest.mark.parametrize("mode", ["lazy", "cached", "streaming"])
def test_damaged_block_is_refused_and_named_other_blocks_still_read(
    blocked: Path, mode: str
) -> None:
    _flip_under_sample(blocked, 100)
    data = loadwise.open(blocked, mode)
    far = data.get_batch([300, 301])  # other shard or block: still served
    assert far["x"].shape == (2, ROW)
    with pytest.raises(IntegrityError, match=r"sample 100 .*shard `\w+-0000\d\.arrow`.*block"):
        data.get_batch([0, 100])
    with pytest.raises(IntegrityError):  # and it stays refused
        data.get_batch([100])


def test_eager_hashes_whole_shards_while_loading(blocked: Path) -> None:
    _flip_under_sample(blocked, 100)
    with pytest.raises(IntegrityError, match=r"shard `\w+-0000\d\.arrow`.*checksum"):
        loadwise.open(blocked, "eager")


def test_first_batch_checks_only_the_blocks_it_needs(blocked: Path) -> None:
    data = loadwise.open(blocked, "lazy")
    data.get_batch([5])
    verifier = data._blocks
    assert verifier is not None
    checked = sum(int(c.sum()) for c in verifier._checked)
    total = sum(len(c) for c in verifier._checked)
    assert 1 <= checked <= 4 < total  # x's block, the offsets' and data's blocks of `name`
    for start in range(0, SAMPLES, 50):
        data.get_batch(np.arange(start, min(start + 50, SAMPLES)))
    assert verifier._left == 0  # every block a sample uses is checked: no more work per batch


def test_never_policy_skips_block_checks(blocked: Path) -> None:
    _flip_under_sample(blocked, 100)
    data = loadwise.open(blocked, "lazy", verify="never")
    assert data.get_batch([100])["x"].shape == (1, ROW)  # the user asked not to check
