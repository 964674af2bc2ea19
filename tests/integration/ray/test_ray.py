"""Ray (a local ``ray.init(num_cpus=2)``, started once here): ``pack(engine="ray")`` writes the
same bytes as the local engine, survives a killed worker (retried, or failed cleanly and
resumed to the same bytes), and ``loadwise.ray.read`` gives the packed rows to Ray Data."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.data import array_columns, write_class_tree

import loadwise
from loadwise.errors import ConfigError, PackError, SourceError
from loadwise.sources import as_source

ray = pytest.importorskip("ray")
pytestmark = [
    pytest.mark.timeout(240),
    # Ray Data's own DataContext warns about its own deprecated settings when it is made
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the killing source
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks of 32 items, so even a small source runs on several tasks at once."""
    monkeypatch.setattr("loadwise.packing.ray.CHUNK", 32)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _manifest(raw: bytes) -> bytes:
    """A manifest without object addresses (nor its own checksum, which covers them)."""
    plain = json.loads(re.sub(rb" at 0x[0-9a-f]+", b"", raw))
    del plain["xxh3_64"]
    return json.dumps(plain, sort_keys=True).encode()


def _both(source: Any, tmp_path: Path, **options: Any) -> tuple[dict[str, bytes], dict[str, bytes]]:
    loadwise.pack(source, tmp_path / "local", progress=False, **options)
    loadwise.pack(source, tmp_path / "ray", progress=False, engine="ray", **options)
    return _files(tmp_path / "local"), _files(tmp_path / "ray")


def test_ray_pack_is_byte_identical_to_local_arrays(tmp_path: Path, small_chunks: None) -> None:
    local, on_ray = _both(array_columns(), tmp_path, shard_bytes=1_500)
    assert len(local) > 5 and local == on_ray  # shard names (generation), shards, manifest


def test_ray_pack_is_byte_identical_decoding_images_and_skipping(
    tmp_path: Path, small_chunks: None
) -> None:
    """Images decoded and resized on Ray tasks; an unreadable one skipped in source order."""
    tree = write_class_tree(tmp_path / "tree", classes=3, per_class=30, size=20)
    (tree / "class_1" / "015.png").write_bytes(b"not a png")
    local, on_ray = _both(
        tree, tmp_path, shard_bytes=8_000, image_size=(16, 16), encoded=False, on_error="skip"
    )
    # the skip reason quotes Pillow's message, which holds an object address (`<_io.BytesIO
    # object at 0x7f...>`): two local packs differ there too (format/codecs.py, not Ray)
    local["manifest.json"], on_ray["manifest.json"] = (
        _manifest(local["manifest.json"]), _manifest(on_ray["manifest.json"]))  # fmt: skip
    assert len(local) > 5 and local == on_ray
    assert b"015.png" in local["manifest.json"]


def test_ray_pack_of_an_iterable_without_ranges(tmp_path: Path, small_chunks: None) -> None:
    rows = [{"x": np.full(3, i, np.int32), "y": i, "s": "ab" * (i % 7)} for i in range(200)]
    local, on_ray = _both(loadwise.sources.IterableSource(rows), tmp_path, shard_bytes=600)
    assert len(local) > 3 and local == on_ray


def test_ray_refuses_what_only_the_local_engine_does(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="engine='local'"):
        loadwise.pack(array_columns(), tmp_path / "d", engine="ray", on_error="fallback",
                      progress=False)  # fmt: skip
    rows = [{"x": 1}] * 40 + [{"x": 2, "extra": 3}]
    with pytest.raises(SourceError, match="extra"):
        loadwise.pack(rows, tmp_path / "e", engine="ray", progress=False)
    assert not (tmp_path / "e").exists()


class _Killing:
    """An array source whose Ray worker dies (``os._exit``) when it reads item 200, while the
    file ``marker`` exists (``once``: the dying worker removes it first)."""

    def __init__(self, marker: Path, once: bool) -> None:
        self.inner, self.marker, self.once = as_source(array_columns()), marker, once
        self.categories, self.kind = self.inner.categories, self.inner.kind
        self.driver = os.getpid()

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.inner)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def records(self, start: int, stop: int) -> Iterator[Any]:
        if os.getpid() != self.driver and start <= 200 < stop and self.marker.exists():
            if self.once:
                self.marker.unlink()
            os._exit(1)  # the worker process dies mid-task
        return self.inner.records(start, stop)


def test_a_killed_ray_worker_is_retried_and_the_pack_is_identical(
    tmp_path: Path, small_chunks: None
) -> None:
    marker = tmp_path / "kill-once"
    marker.touch()
    loadwise.pack(_Killing(marker, once=True), tmp_path / "ray", engine="ray",
                  shard_bytes=1_500, progress=False)  # fmt: skip
    assert not marker.exists()  # a worker did die
    loadwise.pack(array_columns(), tmp_path / "local", shard_bytes=1_500, progress=False)
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")


@pytest.mark.slow
def test_a_worker_killed_every_time_fails_cleanly_and_resumes_identically(
    tmp_path: Path, small_chunks: None
) -> None:
    marker = tmp_path / "kill-always"
    marker.touch()
    with pytest.raises(PackError, match="resume=True"):
        loadwise.pack(_Killing(marker, once=False), tmp_path / "ray", engine="ray",
                      shard_bytes=1_500, resume=True, progress=False)  # fmt: skip
    assert not (tmp_path / "ray").exists()  # nothing published
    marker.unlink()
    loadwise.pack(_Killing(marker, once=False), tmp_path / "ray", engine="ray",
                  shard_bytes=1_500, resume=True, progress=False)  # fmt: skip
    loadwise.pack(array_columns(), tmp_path / "local", shard_bytes=1_500, progress=False)
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")


def test_ray_read_gives_the_packed_rows(arrays_packed: Path) -> None:
    rows = loadwise.ray.read(arrays_packed, fields=["label", "name", "image"]).take_all()
    rows.sort(key=lambda r: r["index"])  # Ray hands shards on as they finish
    assert [r["index"] for r in rows] == list(range(300))
    columns = array_columns()
    assert len(rows) == 300
    assert [r["label"] for r in rows] == list(np.asarray(columns["label"]))
    assert [r["name"] for r in rows] == columns["name"]
    image = np.asarray(rows[123]["image"]).reshape(1, 6, 5)
    assert np.array_equal(image, np.asarray(columns["image"])[123])


def test_ray_read_refuses_a_damaged_shard(arrays_packed: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(arrays_packed, copy)
    shard = sorted(copy.glob("*.arrow"))[2]
    body = bytearray(shard.read_bytes())
    body[200] ^= 1
    shard.write_bytes(bytes(body))
    with pytest.raises(Exception, match=shard.name):
        loadwise.ray.read(copy).take_all()
