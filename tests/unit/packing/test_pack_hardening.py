"""Issue 18: ``resume`` never keeps shards of other data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import loadwise
import loadwise.packing.partition as partition
from loadwise.errors import ConfigError
from loadwise.sources import ArraySource, ImageFile


def _arrays(shift: int = 0) -> dict[str, list[np.ndarray]]:
    """400 samples of 2,000 values: ``repr`` of such arrays shows only their ends."""
    arrays = [np.arange(2000, dtype=np.int64) * (i + 1) for i in range(400)]
    for array in arrays:
        array[1000] += shift  # one element in the middle of every array
    return {"x": arrays}


def test_the_fingerprint_covers_every_byte_of_every_value() -> None:
    base = ArraySource(_arrays()).describe()["fingerprint"]
    assert ArraySource(_arrays(shift=1)).describe()["fingerprint"] != base
    assert ArraySource(_arrays()).describe()["fingerprint"] == base
    as_int32 = {"x": [a.astype(np.int32) for a in _arrays()["x"]]}
    assert ArraySource(as_int32).describe()["fingerprint"] != base  # same numbers, other dtype
    split = ArraySource({"s": ["ab", "c"]}).describe()["fingerprint"]
    assert ArraySource({"s": ["a", "bc"]}).describe()["fingerprint"] != split


def test_resume_over_changed_arrays_keeps_no_stale_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "d"
    module = partition  # where pack writes shards
    original, calls = module.ShardWriter.add, []

    def interrupted(self, sample, item):  # type: ignore[no-untyped-def]
        calls.append(item)
        if len(calls) == 300:
            raise KeyboardInterrupt  # killed after several shards were finished
        return original(self, sample, item)

    monkeypatch.setattr(module.ShardWriter, "add", interrupted)
    with pytest.raises(KeyboardInterrupt):
        loadwise.pack(_arrays(), dest, shard_bytes=200_000, resume=True, progress=False)
    monkeypatch.setattr(module.ShardWriter, "add", original)
    staging = next(tmp_path.glob(".d.partial-*"))
    staging.rename(staging.with_name(".d.partial-999999999-00000000"))  # as if its pack died
    changed = _arrays(shift=1)
    loadwise.pack(changed, dest, shard_bytes=200_000, resume=True, progress=False)
    with loadwise.open(dest, "lazy") as data:
        got = data.get_batch(np.arange(400))["x"].numpy()
    assert np.array_equal(got, np.stack(changed["x"]))  # was: 60 of 400 samples stale


def test_resume_is_refused_when_a_value_cannot_be_fingerprinted(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    source = ArraySource({"image": [ImageFile(tmp_path / "a.png")] * 2, "label": [0, 1]})
    assert "fingerprint" not in source.describe()
    with pytest.raises(ConfigError, match="`resume=True` needs a source whose content"):
        loadwise.pack(source, tmp_path / "d", resume=True, progress=False)
