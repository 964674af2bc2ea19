"""Archives are packed without extracting; hostile members refuse the whole archive."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import loadwise
from loadwise.errors import SourceError


def _png(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((6, 5), value, np.uint8)).save(out, format="PNG")
    return out.getvalue()


FILES = {
    f"top/{c}/{i}.png": _png(10 * k + i) for k, c in enumerate(["cat", "dog"]) for i in range(3)
}


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def _tar(path: Path, files: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> Path:  # type: ignore[assignment]
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra:
            archive.addfile(info)
    return path


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_archive_packs_like_the_folder(tmp_path: Path, kind: str) -> None:
    archive = (_zip if kind == "zip" else _tar)(tmp_path / f"photos.{kind}", FILES)
    dest = tmp_path / "d"
    loadwise.pack(archive, dest, progress=False)
    data = loadwise.open(dest, "eager")
    batch = data.get_batch(range(len(data)))
    assert data.categories("label") == ("cat", "dog")
    assert batch["label"].tolist() == [0, 0, 0, 1, 1, 1]
    assert batch["image"][4, 0, 0, 0].item() == 11  # dog/1.png
    assert batch["path"][0] == "top/cat/0.png"


@pytest.mark.parametrize(
    "bad_name", ["../evil/x.png", "/etc/cat/x.png", "top/../../x/y.png", "C:/cat/x.png"]
)
def test_escaping_member_names_refuse_the_archive(tmp_path: Path, bad_name: str) -> None:
    archive = _zip(tmp_path / "bad.zip", {**FILES, bad_name: _png(1)})
    with pytest.raises(SourceError, match="escape its folder.*refusing"):
        loadwise.pack(archive, tmp_path / "d", progress=False)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("link", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE])
def test_links_and_devices_refuse_the_archive(tmp_path: Path, link: bytes) -> None:
    info = tarfile.TarInfo("top/cat/link.png")
    info.type = link
    info.linkname = "/etc/passwd"
    archive = _tar(tmp_path / "bad.tar.gz", FILES, [info])
    with pytest.raises(SourceError, match=r"link\.png` is a (link|device)"):
        loadwise.pack(archive, tmp_path / "d", progress=False)


def test_zip_symlink_member_is_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path / "bad.zip", FILES)
    with zipfile.ZipFile(path, "a") as archive:
        info = zipfile.ZipInfo("top/cat/evil.png")
        info.external_attr = 0o120777 << 16  # a symbolic link
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(SourceError, match="evil.png` is a link"):
        loadwise.pack(path, tmp_path / "d", progress=False)


def test_corrupt_archive_and_bad_layout_are_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SourceError, match="cannot read archive"):
        loadwise.pack(broken, tmp_path / "d", progress=False)
    flat = _zip(tmp_path / "flat.zip", {"a.png": _png(1), "b.png": _png(2)})
    with pytest.raises(SourceError, match="nesting depths"):
        loadwise.pack(flat, tmp_path / "d", progress=False)
