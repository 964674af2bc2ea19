"""The packing seam: partitions written apart and assembled into one manifest open as one
dataset; options grouped into objects give the same bytes as the older keywords."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import loadwise
from loadwise.errors import ConfigError, SourceError
from loadwise.format.fields import ArrayField, StringField
from loadwise.format.spec import MANIFEST_NAME, manifest_to_json
from loadwise.packing import PackPlan, ShardLayout, assemble_manifest, write_partition
from loadwise.packing.progress import PackProgress
from loadwise.sources import DecodeOptions, ImageOptions


def _pieces(start: int, stop: int) -> list[tuple[str, dict]]:
    return [(str(i), {"x": np.full(3, i, np.int16), "s": f"item {i}"}) for i in range(start, stop)]


def test_partitions_assemble_into_one_dataset(tmp_path: Path) -> None:
    plan = PackPlan(layout=ShardLayout(shard_bytes=60))
    parts = [
        write_partition(
            _pieces(a, b), tmp_path, plan, categories={}, shard_prefix=p, progress=PackProgress(p)
        )
        for p, (a, b) in (("p0-", (0, 25)), ("p1-", (25, 40)))
    ]
    assert parts[0].fields == (ArrayField("x", "int16", (3,)), StringField("s"))
    manifest = assemble_manifest(parts, {"kind": "test"}, "two ranges")
    assert [s.name[:3] for s in manifest.shards][:1] == ["p0-"] and len(manifest.shards) > 2
    (tmp_path / MANIFEST_NAME).write_text(manifest_to_json(manifest))
    with loadwise.open(tmp_path, "lazy") as ds:
        batch = ds.get_batch(np.arange(40))
    assert batch["x"][:, 0].tolist() == list(range(40))
    assert batch["s"][39] == "item 39"


def test_partitions_of_different_fields_or_nothing_are_refused(tmp_path: Path) -> None:
    plan = PackPlan()
    one = write_partition(_pieces(0, 2), tmp_path, plan, categories={}, progress=PackProgress("a"))
    other = write_partition(
        [("9", {"x": np.zeros(2, np.int8)})],
        tmp_path,
        plan,
        categories={},
        shard_prefix="b-",
        progress=PackProgress("b"),
    )
    with pytest.raises(SourceError, match="different fields.*schema="):
        assemble_manifest([one, other], {}, "mixed")
    with pytest.raises(SourceError, match="no sample of `empty` could be read"):
        assemble_manifest([], {}, "empty")


def test_option_objects_and_older_keywords_write_the_same_bytes(
    class_tree: Path, tmp_path: Path
) -> None:
    loadwise.pack(class_tree, tmp_path / "a", image_size=(8, 6), image_mode="L",
                  shard_bytes=200, progress=False)  # fmt: skip
    loadwise.pack(
        class_tree,
        tmp_path / "b",
        decode=DecodeOptions(image=ImageOptions(size=(8, 6), mode="L")),
        layout=ShardLayout(shard_bytes=200),
        progress=False,
    )
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(files) > 2 and files == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in files:
        if name != MANIFEST_NAME:  # the manifest names the source root, the same here too
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_bad_options_name_the_argument(class_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown argument.*'image_sise'.*image_size"):
        loadwise.pack(class_tree, tmp_path / "d", image_sise=8)
    with pytest.raises(ConfigError, match="`shard_bytes` must be an integer >= 1. Found: 0"):
        ShardLayout(shard_bytes=0)
    with pytest.raises(ConfigError, match="encoded=True"):
        ImageOptions(size=(8, 8), encoded=True)
    with pytest.raises(ConfigError, match="`engine` must be one of local"):
        loadwise.pack(class_tree, tmp_path / "d", engine="spark")
    with pytest.raises(ConfigError, match="distinct names"):
        PackPlan(schema=(StringField("s"), StringField("s")))


def test_schema_fields_missing_from_a_sample_are_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="sample `0` has no field `caption`"):
        loadwise.pack([{"x": 1}], tmp_path / "d", schema=[StringField("caption")], progress=False)
