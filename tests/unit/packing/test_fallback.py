"""``on_error="fallback"``: unreadable items become placeholders marked ``valid=False``, in
source order, listed in the manifest; the same bytes with any worker count, and a killed
fallback pack resumes byte-identical."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.media import jpeg

import loadwise
from loadwise.errors import SourceError
from loadwise.format.reader import read_manifest
from loadwise.format.spec import MANIFEST_NAME
from loadwise.packing.progress import PackProgress
from loadwise.sources import ArraySource, ImageBytes

BROKEN = {0, 1, 2, 3, 9, 17}  # failures before the first readable item, and after


def _source(count: int = 48) -> ArraySource:
    images = [
        ImageBytes(b"not an image" if i in BROKEN else jpeg(i, (20, 30)), f"img{i}")
        for i in range(count)
    ]
    return ArraySource(
        {
            "image": images,
            "n": np.arange(count, dtype=np.int64),
            "text": [f"t{i}" for i in range(count)],
        }
    )


def _pack(dest: Path, source: Any = None, **options: Any) -> loadwise.PackReport:
    options.setdefault("shard_bytes", 1_200)  # a few samples per shard
    return loadwise.pack(
        source or _source(),
        dest,
        image_size=(10, 12),
        image_mode="RGB",
        on_error="fallback",
        progress=False,
        **options,
    )


def test_unreadable_items_become_placeholders_marked_not_valid(tmp_path: Path) -> None:
    report = _pack(tmp_path / "fb", source=_source(24))
    assert report.num_samples == 24 and report.num_shards > 3
    assert [s.item for s in report.skipped] == [str(i) for i in sorted(BROKEN)]
    assert all("cannot decode image" in s.reason for s in report.skipped)
    with loadwise.open(tmp_path / "fb", "eager") as packed:
        batch = packed.get_batch(np.arange(24))
    valid = batch["valid"].numpy()
    assert valid.dtype == np.bool_ and set(np.flatnonzero(~valid)) == BROKEN
    assert batch["n"].tolist() == [0 if i in BROKEN else i for i in range(24)]
    assert not batch["image"][sorted(BROKEN)].any() and batch["image"][4].any()
    assert batch["text"][9] == "" and batch["text"][10] == "t10"


def _assert_same_pack(one: Path, two: Path) -> None:
    """Same shards, byte for byte, and the same manifest but for the wording of Pillow's
    errors (they name a BytesIO object's address, which differs from run to run)."""
    for shard in sorted(one.glob("*.arrow")):
        assert shard.read_bytes() == (two / shard.name).read_bytes(), shard.name
    a, b = (read_manifest(path) for path in (one, two))
    assert (a.fields, a.shards) == (b.fields, b.shards)
    assert [s.item for s in a.skipped] == [s.item for s in b.skipped]


def test_workers_give_the_same_bytes(tmp_path: Path) -> None:
    _pack(tmp_path / "one")
    _pack(tmp_path / "two", workers=2)
    _assert_same_pack(tmp_path / "one", tmp_path / "two")


def test_progress_saved_mid_catch_up_counts_only_what_the_shards_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Placeholders for the failures before the first readable item are written when it
    comes; a shard finished among them must save progress up to its last item, or a pack
    killed right then would resume past items no shard holds."""
    saves: list[tuple[int, int, list[str]]] = []
    original = PackProgress.save

    def spy(self: PackProgress, staging: Path, durable: bool = True) -> None:
        stored = sum(shard.num_samples for shard in self.shards)
        saves.append((self.items_done, stored, [s.item for s in self.skipped]))
        original(self, staging, durable)

    monkeypatch.setattr(PackProgress, "save", spy)
    _pack(tmp_path / "fb", shard_bytes=1_000)  # three samples a shard: one ends at p2
    assert saves[0] == (3, 3, ["0", "1", "2"])
    for done, stored, skipped in saves:  # with fallback every item is a stored sample
        assert done == stored and all(int(item) < done for item in skipped)


class _Dies(ArraySource):
    """Raises after ``die_at`` items the first time it is read (as a killed pack stops)."""

    die_at: int | None = 40  # after the first shards were written

    def records(self, start: int, stop: int) -> Iterator[tuple[str, dict[str, Any]]]:
        for name, record in super().records(start, stop):
            if self.die_at is not None and int(name) == self.die_at:
                self.die_at = None
                raise KeyboardInterrupt
            yield name, record


def test_a_killed_fallback_pack_resumes_byte_identical(tmp_path: Path) -> None:
    _pack(tmp_path / "whole", shard_bytes=1_000)
    dying = _Dies(_source()._columns)  # type: ignore[attr-defined]
    with pytest.raises(KeyboardInterrupt):
        _pack(tmp_path / "resumed", dying, resume=True, shard_bytes=1_000)
    assert not (tmp_path / "resumed").exists()
    _pack(tmp_path / "resumed", dying, resume=True, shard_bytes=1_000)
    _assert_same_pack(tmp_path / "whole", tmp_path / "resumed")


def test_the_other_policies_and_what_fallback_refuses(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="on_error='skip'.*'fallback'"):
        loadwise.pack(_source(), tmp_path / "raise", image_size=8, progress=False)
    skipped = loadwise.pack(
        _source(), tmp_path / "skip", image_size=8, on_error="skip", progress=False
    )
    assert skipped.num_samples == 48 - len(BROKEN)
    with loadwise.open(tmp_path / "skip", "lazy") as packed:
        assert "valid" not in {f.name for f in packed.fields}
    clash = ArraySource({"valid": np.ones(3), "x": np.arange(3)})
    with pytest.raises(SourceError, match="field `valid`"):
        loadwise.pack(clash, tmp_path / "clash", on_error="fallback", progress=False)
    nothing = ArraySource({"image": [ImageBytes(b"x", "a"), ImageBytes(b"y", "b")]})
    with pytest.raises(SourceError, match="no sample .* could be read; 2 skipped"):
        loadwise.pack(nothing, tmp_path / "none", on_error="fallback", progress=False)
    assert not (tmp_path / "none" / MANIFEST_NAME).exists()
