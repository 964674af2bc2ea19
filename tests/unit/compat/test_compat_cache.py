"""``packed_folder``: packs once, reuses while files are unchanged, survives racing processes."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest

import loadwise
from loadwise.compat import cache
from loadwise.compat.cache import packed_folder
from loadwise.errors import ConfigError, PackError
from loadwise.packing import pack as real_pack

Tree = tuple[Path, list[tuple[Path, int]]]


def _refuse_pack(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("pack was called, but the cached entry should have been reused")


def _logged_pack(*args: Any, **kwargs: Any) -> Any:
    with open(os.environ["PACK_LOG"], "a") as log:
        log.write(f"{os.getpid()}\n")
    return real_pack(*args, **kwargs)


def test_packs_into_the_cache_once(tree: Tree, folder_cache: Path, monkeypatch) -> None:
    root, files = tree
    packed = packed_folder(root, image_size=16, image_mode="RGB")
    assert packed.parent == folder_cache / "folders"
    assert len(loadwise.open(packed, "lazy")) == len(files)
    stamp = (packed / "manifest.json").stat().st_mtime_ns
    monkeypatch.setattr(cache, "pack", _refuse_pack)
    assert packed_folder(root, image_size=(16, 16), image_mode="RGB") == packed
    assert (packed / "manifest.json").stat().st_mtime_ns == stamp


def test_options_give_separate_entries(tree: Tree) -> None:
    root, _ = tree
    small = packed_folder(root, image_size=16, image_mode="RGB")
    assert packed_folder(root, image_size=(16, 20), image_mode="RGB") != small
    assert packed_folder(root, image_size=16, image_mode="L") != small


def test_changed_file_repacks_and_drops_stale_entry(
    tree: Tree, folder_cache: Path, rewrite: Callable[[Path, int], None]
) -> None:
    root, files = tree
    before = packed_folder(root, image_size=16, image_mode="RGB")
    old_image = loadwise.open(before, "eager").get_batch([3])["image"][0]
    changed = files[3][0]
    rewrite(changed, 99)
    os.utime(changed, ns=(1, 1))  # a different mtime even on coarse-clock file systems
    after = packed_folder(root, image_size=16, image_mode="RGB")
    assert after != before
    assert not before.exists()
    new_image = loadwise.open(after, "eager").get_batch([3])["image"][0]
    assert new_image.shape == old_image.shape == (3, 16, 16)
    assert not new_image.equal(old_image)
    assert [p.name for p in (folder_cache / "folders").iterdir() if p.is_dir()] == [after.name]


def test_packed_dataset_is_used_in_place(tree: Tree, tmp_path: Path) -> None:
    root, _ = tree
    loadwise.pack(root, tmp_path / "packed", image_size=8, image_mode="L", progress=False)
    assert packed_folder(tmp_path / "packed", image_size=None) == tmp_path / "packed"


def test_lost_race_reuses_the_winner(tree: Tree, monkeypatch) -> None:
    """Another process publishes first: pack raises PackError, the finished entry is reused."""
    root, _ = tree

    def lose(source: Any, dest: Path, **kwargs: Any) -> None:
        real_pack(source, dest, progress=False, **kwargs)
        raise PackError(f"destination `{dest}` exists")

    monkeypatch.setattr(cache, "pack", lose)
    packed = packed_folder(root, image_size=16, image_mode="RGB")
    assert (packed / "manifest.json").is_file()


def test_failed_pack_is_raised(tree: Tree, monkeypatch) -> None:
    root, _ = tree

    def fail(source: Any, dest: Path, **kwargs: Any) -> None:
        raise PackError("disk full")

    monkeypatch.setattr(cache, "pack", fail)
    with pytest.raises(PackError, match="disk full"):
        packed_folder(root, image_size=16)


def test_concurrent_processes_pack_once(tree: Tree, tmp_path: Path, monkeypatch) -> None:
    root, _ = tree
    monkeypatch.setenv("PACK_LOG", str(tmp_path / "packs.log"))
    monkeypatch.setattr(cache, "pack", _logged_pack)
    with ProcessPoolExecutor(3, mp_context=get_context("fork")) as pool:
        futures = [
            pool.submit(packed_folder, root, image_size=16, image_mode="RGB") for _ in range(3)
        ]
        paths = {f.result() for f in futures}
    assert len(paths) == 1
    assert len((tmp_path / "packs.log").read_text().splitlines()) == 1


@pytest.mark.parametrize("size", [0, (16,), (16, -1), "16", (1.5, 2)])
def test_bad_image_size(tree: Tree, size: Any) -> None:
    with pytest.raises(ConfigError, match="image_size"):
        packed_folder(tree[0], image_size=size)


def test_missing_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(loadwise.LoadwiseError, match="does not exist"):
        packed_folder(tmp_path / "nope", image_size=16)


def test_unwritable_cache_says_how_to_fix(tree: Tree, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LOADWISE_CACHE", str(blocker / "cache"))
    with pytest.raises(ConfigError, match=r"\$LOADWISE_CACHE"):
        packed_folder(tree[0], image_size=16)
