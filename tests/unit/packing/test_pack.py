"""pack: folders and arrays in, shards and a manifest out; bad input named and refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.data import write_class_tree

import loadwise
from loadwise.errors import ConfigError, PackError, SourceError
from loadwise.format.fields import ImageField
from loadwise.format.reader import read_manifest


def test_omniglot_tree_labels_alphabets_and_pixels(
    omniglot_tree: Path, omniglot_packed: Path
) -> None:
    ds = loadwise.open(omniglot_packed, "lazy")
    files = sorted(omniglot_tree.glob("*/*/*.png"))
    assert len(ds) == len(files) == 3 * 4 * 5
    batch = ds.get_batch(np.arange(len(ds)))
    characters = ds.categories("label")
    for i, path in enumerate(files):
        assert batch["path"][i] == str(path.relative_to(omniglot_tree))
        assert characters[int(batch["label"][i])] == f"{path.parent.parent.name}/{path.parent.name}"
        assert ds.categories("alphabet")[int(batch["alphabet"][i])] == path.parent.parent.name
        assert np.array_equal(
            batch["image"][i, 0].numpy(), np.asarray(Image.open(path).convert("L"))
        )
    assert batch["image"].shape == (60, 1, 105, 105)
    assert len(ds.manifest.shards) > 1


def test_class_tree_with_resize_and_mode(class_tree: Path, tmp_path: Path) -> None:
    loadwise.pack(class_tree, tmp_path / "d", image_size=(16, 12), image_mode="L", progress=False)
    ds = loadwise.open(tmp_path / "d", "eager")
    assert ds.get_batch([0, 11])["image"].shape == (2, 1, 16, 12)
    assert ds.categories("label") == ("class_0", "class_1", "class_2")
    assert ds.get_batch(np.arange(12))["label"].tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_encoded_keeps_file_bytes_and_decodes_on_read(class_tree: Path, tmp_path: Path) -> None:
    loadwise.pack(class_tree, tmp_path / "enc", encoded=True, progress=False)
    field = read_manifest(tmp_path / "enc").field("image")
    assert field == ImageField("image", mode="RGB")
    first = sorted(class_tree.glob("*/*.png"))[0]
    for mode in ("eager", "lazy", "cached", "streaming"):
        image = loadwise.open(tmp_path / "enc", mode).get_batch([0])["image"][0]
        assert np.array_equal(image.numpy(), np.asarray(Image.open(first)).transpose(2, 0, 1))


def test_parallel_pack_writes_identical_shards(omniglot_tree: Path, tmp_path: Path) -> None:
    one = loadwise.pack(omniglot_tree, tmp_path / "one", shard_bytes=40_000, progress=False)
    two = loadwise.pack(
        omniglot_tree, tmp_path / "two", shard_bytes=40_000, workers=2, progress=False
    )
    sums = [[s.xxh3_64 for s in read_manifest(r.path).shards] for r in (one, two)]
    assert sums[0] == sums[1] and one.num_samples == two.num_samples == 60


def test_a_pack_that_need_not_be_durable_makes_no_fsync_and_the_same_shards(
    omniglot_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    durable = loadwise.pack(omniglot_tree, tmp_path / "one", shard_bytes=40_000, progress=False)
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    cache = loadwise.pack(
        omniglot_tree, tmp_path / "two", shard_bytes=40_000, durable=False, progress=False
    )
    assert synced == []
    sums = [[s.xxh3_64 for s in read_manifest(r.path).shards] for r in (durable, cache)]
    assert sums[0] == sums[1] and len(sums[0]) > 1


def test_destination_exists_needs_overwrite(class_tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "d"
    loadwise.pack(class_tree, dest, progress=False)
    with pytest.raises(PackError, match="overwrite=True"):
        loadwise.pack(class_tree, dest, progress=False)
    loadwise.pack(class_tree, dest, image_mode="L", overwrite=True, progress=False)
    assert read_manifest(dest).field("image").shape == (1, 24, 24)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(class_tree: Path) -> None:
    with pytest.raises(PackError, match="not a loadwise dataset"):
        loadwise.pack({"x": np.zeros(3)}, class_tree, overwrite=True, progress=False)


@pytest.mark.parametrize("durable", [True, False])
def test_failure_mid_pack_leaves_nothing_that_opens(tmp_path: Path, durable: bool) -> None:
    def records():
        for i in range(50):
            if i == 30:
                raise RuntimeError("source died")
            yield {"x": np.full(100, i, np.uint8)}

    source = loadwise.sources.IterableSource(records(), length=50)
    with pytest.raises(RuntimeError, match="source died"):
        loadwise.pack(source, tmp_path / "d", shard_bytes=500, durable=durable, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_stale_staging_of_a_dead_pack_is_removed(tmp_path: Path) -> None:
    stale = tmp_path / ".d.partial-999999999-0badf00d"
    stale.mkdir()
    (stale / "00000.arrow").write_bytes(b"half")
    loadwise.pack({"x": np.zeros(3)}, tmp_path / "d", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


@pytest.mark.parametrize("damage", ["corrupt", "empty", "text"])
def test_unreadable_image_raises_naming_the_file_or_is_skipped(
    class_tree: Path, tmp_path: Path, damage: str
) -> None:
    bad = class_tree / "class_1" / "002.png"
    content = {"corrupt": bad.read_bytes()[:60], "empty": b"", "text": b"not an image"}[damage]
    bad.write_bytes(content)
    with pytest.raises(SourceError, match="class_1/002.png"):
        loadwise.pack(class_tree, tmp_path / "d", progress=False)
    assert not (tmp_path / "d").exists()
    report = loadwise.pack(class_tree, tmp_path / "d", on_error="skip", progress=False)
    assert report.num_samples == 11
    assert [s.item for s in report.skipped] == ["class_1/002.png"]
    assert read_manifest(tmp_path / "d").skipped == report.skipped


def test_mixed_sizes_without_resize_name_two_files(tmp_path: Path) -> None:
    root = write_class_tree(tmp_path / "src", classes=1, per_class=2, size=10)
    Image.new("RGB", (11, 10)).save(root / "class_0" / "zzz.png")
    with pytest.raises(SourceError, match=r"class_0/zzz\.png.*class_0/000\.png.*image_size"):
        loadwise.pack(root, tmp_path / "d", progress=False)


def test_missing_and_empty_sources(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        loadwise.pack(tmp_path / "nope", tmp_path / "d", progress=False)
    (tmp_path / "empty" / "class_a").mkdir(parents=True)
    with pytest.raises(SourceError, match="no image files"):
        loadwise.pack(tmp_path / "empty", tmp_path / "d", progress=False)


def test_alphabet_without_characters(tmp_path: Path) -> None:
    (tmp_path / "tree" / "Latin" / "character01").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "tree" / "Latin" / "character01" / "a.png")
    (tmp_path / "tree" / "Greek").mkdir()
    with pytest.raises(SourceError, match="Greek.*no character folders"):
        loadwise.pack(tmp_path / "tree", tmp_path / "d", progress=False)


def test_wrong_dtype_or_shape_is_refused_with_the_sample_name(tmp_path: Path) -> None:
    records = [{"x": np.zeros(4, np.float32)}, {"x": np.zeros(4, np.float32)}, {"x": np.zeros(5)}]
    with pytest.raises(SourceError, match="sample `2` field `x` has dtype float64, shape \\(5,\\)"):
        loadwise.pack(records, tmp_path / "d", progress=False)


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    for kwargs, name in [
        ({"workers": 0}, "workers"),
        ({"shard_bytes": 0}, "shard_bytes"),
        ({"on_error": "ignore"}, "on_error"),
        ({"image_size": (0, 3)}, "image_size"),
        ({"image_size": 8, "encoded": True}, "image_size"),
    ]:
        with pytest.raises(ConfigError, match=name):
            loadwise.pack({"x": np.zeros(3)}, tmp_path / "d", progress=False, **kwargs)


def test_manifest_records_source_and_is_written_last(class_tree: Path, tmp_path: Path) -> None:
    loadwise.pack(class_tree, tmp_path / "d", progress=False)
    manifest_path = tmp_path / "d" / "manifest.json"
    doc = json.loads(manifest_path.read_text())
    assert doc["manifest"]["source"]["kind"] == "image-folder"
    assert len(doc["manifest"]["source"]["fingerprint"]) == 16
    shard_times = [os.stat(p).st_mtime_ns for p in (tmp_path / "d").glob("*.arrow")]
    assert os.stat(manifest_path).st_mtime_ns >= max(shard_times)


def test_a_dataset_published_meanwhile_is_kept(tmp_path: Path) -> None:
    dest = tmp_path / "d"

    def records():
        for i in range(10):
            if i == 5:  # another process finishes its pack of the same destination
                loadwise.pack({"x": np.ones(2)}, dest, progress=False)
            yield {"x": np.zeros(2)}

    source = loadwise.sources.IterableSource(records(), length=10)
    with pytest.raises(PackError, match="appeared while packing.*overwrite=True"):
        loadwise.pack(source, dest, progress=False)
    assert loadwise.open(dest, "lazy").get_batch([0, 1])["x"].tolist() == [1.0, 1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
