"""Damaged datasets never yield data: truncation, flipped bytes, bad manifests are named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import loadwise
from loadwise.cli.main import main
from loadwise.errors import FormatError, IntegrityError
from loadwise.format.spec import FORMAT_VERSION, _checksum
from loadwise.format.verify import verify

MODES = ("eager", "lazy", "cached", "streaming")


@pytest.fixture
def copy(arrays_packed: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(arrays_packed, tmp_path / "copy"))


def flip_byte(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def _shard(root: Path, number: int) -> Path:
    """Shard ``number``'s file (named ``<generation>-NNNNN.arrow``)."""
    return next(root.glob(f"*-{number:05d}.arrow"))


def test_truncated_shard_fails_at_open_with_sizes(copy: Path) -> None:
    shard = _shard(copy, 2)
    size = shard.stat().st_size
    shard.write_bytes(shard.read_bytes()[:-100])
    for mode in MODES:
        with pytest.raises(
            IntegrityError, match=rf"00002\.arrow.*{size - 100:,}.*{size:,}.*truncated"
        ):
            loadwise.open(copy, mode)


def test_flipped_byte_is_named_by_verify_and_never_read(copy: Path, capsys) -> None:
    shard = loadwise.open(copy, "lazy").manifest.shards[3]
    span = shard.buffers["image"]["values"]
    flip_byte(copy / shard.name, span.offset + 5)
    report = verify(copy)
    assert [p.shard for p in report.problems] == [shard.name] and report.shards_checked >= 4
    assert main(["verify", str(copy)]) == 1
    assert f"DAMAGED {shard.name}" in capsys.readouterr().out
    starts = loadwise.open(copy, "lazy").manifest.shard_starts()
    inside, outside = int(starts[3]), int(starts[0])
    for mode in MODES:
        if mode == "eager":
            with pytest.raises(IntegrityError, match="00003.arrow.*checksum"):
                loadwise.open(copy, mode)
            continue
        ds = loadwise.open(copy, mode)
        assert ds.get_batch([outside])["index"].tolist() == [outside]
        with pytest.raises(IntegrityError, match="00003.arrow.*checksum"):
            ds.get_batch([outside, inside])


def test_verify_never_skips_the_checksum_but_not_the_layout(copy: Path) -> None:
    shard = loadwise.open(copy, "lazy").manifest.shards[1]
    flip_byte(copy / shard.name, shard.buffers["image"]["values"].offset)
    ds = loadwise.open(copy, "lazy", verify="never")
    assert len(ds.get_batch(np.arange(len(ds)))["index"]) == len(ds)
    with pytest.raises(IntegrityError):
        loadwise.open(copy, "lazy", verify="open")


def test_missing_manifest(copy: Path) -> None:
    (copy / "manifest.json").unlink()
    with pytest.raises(FormatError, match="no manifest.json.*loadwise pack"):
        loadwise.open(copy, "lazy")
    assert main(["verify", str(copy)]) == 2


def test_unknown_format_version(copy: Path) -> None:
    path = copy / "manifest.json"
    doc = json.loads(path.read_text())
    doc["manifest"]["version"] = 99
    doc["xxh3_64"] = _checksum(doc["manifest"])
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=f"format version 99.*reads versions 2, {FORMAT_VERSION}"):
        loadwise.open(copy, "lazy")


def test_edited_manifest_fails_its_checksum(copy: Path) -> None:
    path = copy / "manifest.json"
    doc = json.loads(path.read_text())
    doc["manifest"]["shards"][0]["num_samples"] += 1
    path.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="manifest.*checksum"):
        loadwise.open(copy, "lazy")
    path.write_text("{not json")
    with pytest.raises(IntegrityError, match="not valid JSON"):
        loadwise.open(copy, "lazy")


def test_missing_shard_file(copy: Path) -> None:
    _shard(copy, 1).unlink()
    with pytest.raises(IntegrityError, match="00001.arrow.*missing"):
        loadwise.open(copy, "lazy")
