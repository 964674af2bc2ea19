"""Issue 18: any archive packs in bounded memory and time (bombs are not decompressed),
members that cannot be read are ``on_error`` items (skipped and recorded, or a clear error),
and archives made the ordinary way (``tar czf x.tgz .``) pack."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.contracts.sources import assert_source_contract

import loadwise
from loadwise.errors import SourceError
from loadwise.sources import ArchiveSource

BOMB_BYTES = 300 << 20  # over the 256 MiB member limit, and 230x its compressed size


def _png(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((6, 5), value, np.uint8)).save(out, format="PNG")
    return out.getvalue()


GOOD = {f"{c}/{i}.png": _png(10 * k + i) for k, c in enumerate(["cat", "dog"]) for i in range(3)}


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, produced as read (a bomb is written without holding it)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bombs") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in GOOD.items():
            archive.writestr(name, data)
        with archive.open("dog/bomb.png", "w", force_zip64=True) as handle:
            for _ in range(BOMB_BYTES >> 20):
                handle.write(bytes(1 << 20))
    return path


@pytest.fixture(scope="module")
def tar_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bombs") / "bomb.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for name, data in GOOD.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("dog/zzz-bomb.png")
        info.size = BOMB_BYTES
        archive.addfile(info, io.BufferedReader(_Zeros(BOMB_BYTES)))
    return path


def _peak_mib(code: str) -> float:
    """Run ``code`` in a fresh interpreter: how far its peak resident memory rose above the
    interpreter with loadwise imported (torch included: ~250 MiB), in MiB."""
    script = (
        "import resource, loadwise, loadwise.packing, loadwise.sources\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"{code}\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    return float(done.stdout.split()[-1])


def test_a_zip_bomb_is_skipped_in_bounded_memory(zip_bomb: Path, tmp_path: Path) -> None:
    dest = tmp_path / "d"
    peak = _peak_mib(
        f"r = loadwise.pack({str(zip_bomb)!r}, {str(dest)!r}, on_error='skip', progress=False)\n"
        f"assert r.num_samples == 6 and [s.item for s in r.skipped] == ['dog/bomb.png']"
    )
    assert peak < 64  # was 2x the member (600 MiB here, 6.4 GB for a 3 GiB member)
    skipped = loadwise.open(dest, "lazy").manifest.skipped
    assert "over `max_member_bytes=268,435,456`: not read" in skipped[0].reason
    with pytest.raises(SourceError, match=r"`dog/bomb\.png` is 314,572,800 bytes, over"):
        loadwise.pack(zip_bomb, tmp_path / "e", progress=False)


def test_a_compressed_tar_bomb_is_refused_before_it_is_decompressed(
    tar_bomb: Path, tmp_path: Path
) -> None:
    peak = _peak_mib(
        f"from loadwise.sources import ArchiveSource\n"
        f"try:\n    ArchiveSource({str(tar_bomb)!r})\nexcept loadwise.errors.SourceError as e:\n"
        f"    assert 'decompression bomb' in str(e), e\nelse:\n    raise SystemExit('accepted')"
    )
    assert peak < 32
    # with a limit that lets it be listed, the member is still too big to read: skipped
    source = ArchiveSource(tar_bomb, max_ratio=10_000)
    report = loadwise.pack(source, tmp_path / "d", on_error="skip", progress=False)
    assert [s.item for s in report.skipped] == ["dog/zzz-bomb.png"]


def test_a_zip_member_within_the_size_limit_but_expanding_too_far_is_a_bomb(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in GOOD.items():
            archive.writestr(name, data)
        archive.writestr("cat/blank.bmp", bytes(8 << 20))  # 8 MiB of zeros: ~1000x
    with pytest.raises(SourceError, match=r"cat/blank\.bmp.*would expand 1,0\d\dx.*max_ratio=100"):
        loadwise.pack(path, tmp_path / "d", progress=False)
    source = ArchiveSource(path, max_ratio=2_000)  # said to be genuine: read (and then decoded)
    with pytest.raises(SourceError, match=r"cannot decode image .*blank\.bmp"):
        loadwise.pack(source, tmp_path / "e", progress=False)


def test_damaged_and_encrypted_members_are_items_on_error_applies_to(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in GOOD.items():
            archive.writestr(name, data)
    blob = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        damaged, locked = archive.getinfo("cat/1.png"), archive.getinfo("dog/2.png")
    blob[damaged.header_offset + 30 + len(damaged.filename) + 20] ^= 0xFF  # inside its pixels
    for at in (locked.header_offset + 6, _central_entry(blob, "dog/2.png") + 8):
        blob[at] |= 0x1  # the "encrypted" flag, in the local and the central header
    path.write_bytes(bytes(blob))
    report = loadwise.pack(path, tmp_path / "d", on_error="skip", progress=False)
    reasons = {s.item: s.reason for s in report.skipped}
    assert report.num_samples == 4 and set(reasons) == {"cat/1.png", "dog/2.png"}
    assert "Bad CRC-32" in reasons["cat/1.png"] and "encrypted" in reasons["dog/2.png"]
    with pytest.raises(SourceError, match=r"cat/1\.png.*cannot be read.*Bad CRC"):
        loadwise.pack(path, tmp_path / "e", progress=False)


def _central_entry(blob: bytearray, name: str) -> int:
    """Where the central directory entry of ``name`` starts."""
    at = blob.index(b"PK\x01\x02")
    while (
        blob[at + 46 : at + 46 + int.from_bytes(blob[at + 28 : at + 30], "little")] != name.encode()
    ):
        at = blob.index(b"PK\x01\x02", at + 4)
    return at


def _ordinary_tar(path: Path, style: str) -> Path:
    with tarfile.open(path, "w:gz") as archive:  # what `tar czf x.tgz .` writes
        for folder in ("./", "./cat/", "./dog/"):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            archive.addfile(info)
        for name, data in GOOD.items():
            info = tarfile.TarInfo(f"./{name}" if style == "dot" else name.replace("/", "//"))
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("style", ["dot", "double-slash"])
def test_archives_made_the_ordinary_way_pack(tmp_path: Path, style: str) -> None:
    path = _ordinary_tar(tmp_path / "x.tgz", style)
    report = loadwise.pack(path, tmp_path / "d", progress=False)
    assert report.num_samples == 6
    with loadwise.open(tmp_path / "d", "lazy") as data:
        assert data.get_batch(np.arange(6))["path"] == sorted(GOOD)


def test_an_archive_made_the_ordinary_way_keeps_the_source_contract(tmp_path: Path) -> None:
    assert_source_contract(ArchiveSource(_ordinary_tar(tmp_path / "x.tgz", "dot")))


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_two_members_with_one_name_are_refused(tmp_path: Path, kind: str) -> None:
    names = ["cat/1.png", "dog/1.png", "./cat/1.png" if kind == "tar" else "cat/1.png"]
    path = tmp_path / f"x.{kind}"
    if kind == "zip":
        with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
            warnings.simplefilter("ignore")  # zipfile warns of the duplicate, and writes it
            for name in names:
                archive.writestr(name, _png(1))
    else:
        with tarfile.open(path, "w") as archive:
            for name in names:
                info = tarfile.TarInfo(name)
                info.size = len(_png(1))
                archive.addfile(info, io.BytesIO(_png(1)))
    with pytest.raises(SourceError, match=r"two members named `cat/1\.png`.*ambiguous"):
        ArchiveSource(path)
