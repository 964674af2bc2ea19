"""Lazy mode unmaps an encoded batch's bytes once decoded: PSS does not carry the dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import loadwise
from loadwise.access import lazy
from loadwise.testing import make_photo_folder


def mapped_kib(path_part: str) -> int:
    """Resident KiB of this process's mappings of files whose path contains ``path_part``."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5:  # a mapping's first line
                inside = len(head) >= 6 and path_part in head[-1]
            elif inside and head[0] == "Rss:":
                total += int(head[1])
    return total


def read_all(path: Path) -> tuple[np.ndarray, int]:
    """Every image of the dataset at ``path`` and the KiB of its files left mapped."""
    with loadwise.open(path, "lazy", fields=["image", "label"]) as ds:
        images = ds.get_batch(np.arange(len(ds)))["image"].numpy().copy()
        return images, mapped_kib(str(path))


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux /proc")
def test_decoded_bytes_leave_the_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_photo_folder(tmp_path / "photos", classes=2, per_class=40, size=64, seed=2)
    loadwise.pack(folder.root, tmp_path / "jpegs", encoded=True, progress=False)
    released, kept_mapped = read_all(tmp_path / "jpegs")
    monkeypatch.setattr(lazy.MappedStorage, "release_segments", lambda self, spec: None)
    same, all_mapped = read_all(tmp_path / "jpegs")
    assert np.array_equal(released, same)  # read back from the page cache alike
    # what stays mapped: offsets, labels, Arrow metadata, and the kernel's fault-around
    # of those reads (up to 64 KB each), not the JPEG bytes
    assert kept_mapped < all_mapped / 2, (kept_mapped, all_mapped)
