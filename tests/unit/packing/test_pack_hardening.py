"""Issue 18: ``resume`` never keeps shards of other data, a full disk is a ``PackError``
keeping the system's message, and a pack removes only its own leftovers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import loadwise
import loadwise.packing.partition as partition
from loadwise.errors import ConfigError, PackError
from loadwise.sources import ArraySource, ImageBytes, ImageFile


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


def test_media_values_are_fingerprinted_by_content_or_file(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"one")
    files = ArraySource({"image": [ImageFile(image)] * 2, "label": [0, 1]})
    before = files.describe()["fingerprint"]
    image.write_bytes(b"three")  # another size: the file changed
    assert files.describe()["fingerprint"] != before
    inline = ArraySource({"image": [ImageBytes(b"ab", "x")], "label": [0]})
    other = ArraySource({"image": [ImageBytes(b"ac", "x")], "label": [0]})
    assert inline.describe()["fingerprint"] != other.describe()["fingerprint"]


def test_resume_is_refused_when_a_value_cannot_be_fingerprinted(tmp_path: Path) -> None:
    source = ArraySource({"thing": [object(), object()], "label": [0, 1]})
    assert "fingerprint" not in source.describe()
    with pytest.raises(ConfigError, match="`resume=True` needs a source whose content"):
        loadwise.pack(source, tmp_path / "d", resume=True, progress=False)


def test_a_full_disk_is_a_pack_error_and_leaves_nothing(tmp_path: Path) -> None:
    """A file size limit makes the disk 'full' for this process: a shard's write fails as
    with ENOSPC, with EFBIG (the next test uses a really full filesystem, where it can)."""
    code = textwrap.dedent(f"""
        import resource, signal
        import numpy as np, loadwise
        from loadwise.errors import PackError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
        try:
            loadwise.pack({{"x": np.zeros((200, 4096), np.uint8)}}, {str(tmp_path / "d")!r},
                          shard_bytes=1_000_000, progress=False)
        except PackError as exc:
            print(exc)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout, "the pack was not stopped by the limit"
    assert "cannot write the pack of" in done.stdout and "File too large" in done.stdout
    assert "free some space" in done.stdout and "Nothing was published" in done.stdout
    assert os.listdir(tmp_path) == []


def test_a_real_full_disk_when_a_small_filesystem_can_be_mounted(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small filesystem here (needs root)")
    try:
        with pytest.raises(PackError, match=r"No space left on device.*free some space"):
            loadwise.pack({"x": np.zeros((100, 8192), np.uint8)}, disk / "d", progress=False)
        assert os.listdir(disk) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_an_unwritable_destination_is_a_pack_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(PackError, match=r"cannot write the pack of .*file/d"):
        loadwise.pack({"x": np.arange(3)}, tmp_path / "file" / "d", progress=False)


def test_a_name_with_glob_characters_removes_only_its_own_leftovers(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    others = [
        tmp_path / f".data1.partial-{dead.pid}-0badf00d",  # `data[1]` as a glob matches it
        tmp_path / f".data[1].partial-{dead.pid}-0badf00d.keep",
        tmp_path / f".data[1].old-{dead.pid}-nothex00",
    ]
    for folder in others:
        folder.mkdir()
        (folder / "progress.json").write_text("{}")
    mine = tmp_path / f".data[1].partial-{dead.pid}-0badf00d"
    mine.mkdir()
    loadwise.pack({"x": np.arange(3)}, tmp_path / "data[1]", progress=False)
    assert all(folder.is_dir() for folder in others) and not mine.exists()
