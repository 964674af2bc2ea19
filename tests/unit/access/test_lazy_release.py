"""Lazy mode unmaps an encoded batch's bytes once decoded: PSS does not carry the dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import loadwise
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


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux /proc")
def test_decoded_bytes_leave_the_mapping(tmp_path: Path) -> None:
    folder = make_photo_folder(tmp_path / "photos", classes=2, per_class=40, size=64, seed=2)
    loadwise.pack(folder.root, tmp_path / "jpegs", encoded=True, progress=False)
    ds = loadwise.open(tmp_path / "jpegs", "lazy", fields=["image", "label"])
    first = ds.get_batch(np.arange(len(ds)))["image"]
    assert mapped_kib(str(tmp_path / "jpegs")) < 16  # labels' page or so, no JPEG bytes
    again = ds.get_batch(np.arange(len(ds)))["image"]  # read back from the page cache
    assert np.array_equal(first.numpy(), again.numpy())
