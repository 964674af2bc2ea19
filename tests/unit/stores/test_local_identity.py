"""Issue 18: what a reader opens is what it verified, and a dataset changed under it is an
error naming the change, never bytes from elsewhere, never a hang.

Special files named as shards (a FIFO, a symbolic link) are refused without blocking; a shard
replaced after the dataset was opened is refused on its next open (identity pinned through
the folder the manifest was read from); ``pack --overwrite`` while a reader runs gives the
reader the old dataset whole or a "replaced while open" error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import loadwise
from loadwise.errors import FormatError, IntegrityError
from loadwise.format.reader import load_manifest
from loadwise.stores import LocalStore

MODES = ("eager", "lazy", "cached", "streaming")


@pytest.fixture
def packed(tmp_path: Path) -> Path:
    """400 rows over several shards (128 bytes a row), rows holding their own index."""
    rows = np.repeat(np.arange(400, dtype=np.int64)[:, None], 16, axis=1)
    loadwise.pack({"x": rows}, tmp_path / "d", shard_bytes=10_000, progress=False)
    return tmp_path / "d"


def _shards(root: Path) -> list[Path]:
    return [root / s.name for s in load_manifest(root).shards]


def test_a_fifo_as_shard_is_refused_at_once_by_open_and_verify(packed: Path) -> None:
    victim = _shards(packed)[1]
    victim.unlink()
    os.mkfifo(victim)
    # in a child with a deadline: a blocking open of a FIFO would hang forever
    code = (
        "import sys, loadwise; from loadwise.cli.main import main\n"
        f"sys.exit(main(['verify', {str(packed)!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and f"DAMAGED {victim.name}" in done.stdout
    assert "FIFO" in done.stdout
    for mode in MODES:
        refused = pytest.raises(IntegrityError, match=rf"{victim.name}.*FIFO.*not a regular")
        with refused, loadwise.open(packed, mode) as data:
            data.get_batch(np.arange(400))


def test_a_symbolic_link_as_shard_is_not_followed(packed: Path, tmp_path: Path) -> None:
    victim = _shards(packed)[0]
    outside = tmp_path / "outside.arrow"
    shutil.copy(victim, outside)  # same bytes: only the link itself is wrong
    victim.unlink()
    victim.symlink_to(outside)
    for mode in MODES:
        refused = pytest.raises(IntegrityError, match=rf"{victim.name}.*symbolic link")
        with refused, loadwise.open(packed, mode) as data:
            data.get_batch(np.arange(400))


def test_a_manifest_that_is_no_regular_file_is_refused(packed: Path, tmp_path: Path) -> None:
    manifest = packed / "manifest.json"
    real = tmp_path / "real.json"
    shutil.move(manifest, real)
    manifest.symlink_to(real)
    with pytest.raises(FormatError, match="manifest.json.*symbolic link"):
        load_manifest(packed)
    manifest.unlink()
    os.mkfifo(manifest)
    with pytest.raises(FormatError, match="manifest.json.*FIFO"):
        load_manifest(packed)


@pytest.mark.parametrize("mode", ["lazy", "cached", "streaming"])
@pytest.mark.parametrize("verify", ["first_use", "never"])
def test_a_shard_replaced_after_open_is_never_served(packed: Path, mode: str, verify: str) -> None:
    """The check-then-open race: a file swapped in after the dataset was opened (here before
    its first read; same size, other bytes) is refused, whatever the verify policy."""
    shards = _shards(packed)
    data = loadwise.open(packed, mode, verify=verify)
    assert data.get_batch([0])["x"][0, 0] == 0  # shard 0 in use
    forged = packed / "forged"
    forged.write_bytes(shards[2].read_bytes().replace(b"\x00" * 8, b"\x01" + b"\x00" * 7))
    os.replace(forged, shards[2])
    starts = data.manifest.shard_starts()
    inside = int(starts[2])
    with pytest.raises(IntegrityError, match=rf"{shards[2].name}.*replaced by another file"):
        data.get_batch([inside])
    data.close()


def test_a_shard_replaced_after_its_first_read_keeps_serving_what_was_verified(
    packed: Path,
) -> None:
    """Readers keep the file they opened: replacing its path changes nothing they return."""
    shards = _shards(packed)
    with loadwise.open(packed, "lazy") as data:
        before = data.get_batch(np.arange(400))["x"]
        os.replace(shards[0], packed / "gone")
        shards[0].write_bytes(b"\xff" * (packed / "gone").stat().st_size)
        assert np.array_equal(data.get_batch(np.arange(400))["x"], before)


def test_overwrite_while_a_reader_runs_gives_it_the_old_data_or_a_replaced_error(
    packed: Path,
) -> None:
    with loadwise.open(packed, "lazy", verify="never") as data:
        first = data.get_batch([0])["x"]  # only shard 0 mapped so far
        rows = np.repeat(np.arange(1000, 1400, dtype=np.int64)[:, None], 16, axis=1)
        loadwise.pack({"x": rows}, packed, shard_bytes=10_000, overwrite=True, progress=False)
        assert data.manifest.generation != load_manifest(packed).generation
        assert np.array_equal(data.get_batch([0])["x"], first)  # still the old file, whole
        with pytest.raises(IntegrityError, match="replaced while open.*Open it again"):
            data.get_batch([399])
    with loadwise.open(packed, "lazy") as fresh:
        assert fresh.get_batch([0, 399])["x"][:, 0].tolist() == [1000, 1399]


def test_each_pack_names_its_shards_by_its_generation(packed: Path, tmp_path: Path) -> None:
    manifest = load_manifest(packed)
    assert len(manifest.generation) == 8
    assert all(s.name.startswith(f"{manifest.generation}-") for s in manifest.shards)
    rows = np.repeat(np.arange(400, dtype=np.int64)[:, None], 16, axis=1)
    loadwise.pack({"x": rows}, tmp_path / "again", shard_bytes=10_000, progress=False)
    assert load_manifest(tmp_path / "again").generation == manifest.generation  # same content
    rows[5, 3] += 1
    loadwise.pack({"x": rows}, tmp_path / "other", shard_bytes=10_000, progress=False)
    assert load_manifest(tmp_path / "other").generation != manifest.generation


def test_a_shard_deleted_after_open_is_named_in_every_verify_mode(packed: Path) -> None:
    for verify in ("first_use", "open", "never"):
        data = loadwise.open(packed, "lazy", verify=verify)
        victim = _shards(packed)[-1]
        saved = victim.read_bytes()
        victim.unlink()
        with pytest.raises(IntegrityError, match=rf"{victim.name}.*missing.*deleted after"):
            data.get_batch([399])
        victim.write_bytes(saved)
        data.close()


def test_identity_travels_to_workers_and_pickles(packed: Path) -> None:
    store = LocalStore(packed)
    manifest = load_manifest(store)
    shard = manifest.shards[1]
    import pickle

    copy = pickle.loads(pickle.dumps(store))
    path = packed / shard.name
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)  # same bytes, another file (perhaps with the same inode number)
    with pytest.raises(IntegrityError, match="after the dataset was opened"):
        copy.open(shard.name, shard.num_bytes)
