"""Build the benchmark's data once per size: image trees, and every contender's stored form.

``build(folder, quick)`` writes (or reuses, if ``built.json`` says it is complete):
- ``omniglot/``: 105x105 grayscale PNGs (18,000; quick 4,000), ``photos/``: 256x256 JPEGs
  in 10 classes (5,000; quick 1,000);
- ``decoded.npy`` + ``labels.npy``: all drawings decoded, for the limits and naive prefetch;
- ``decoded.h5``: the same, one chunk per sample; ``hf/``: a Hugging Face Arrow dataset;
- ``lw-decoded-1`` / ``lw-decoded-2``: the tree packed by ``loadwise.pack`` with 1 and 2
  processes (their times are the pack-speed figure), ``lw-encoded``: the JPEG bytes packed.
Preparation seconds and bytes on disk of each form go to ``built.json``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import loadwise
from loadwise.testing import make_omniglot_tree, make_photo_folder

FULL = {"alphabets": 30, "characters": 30, "drawings": 20, "per_class": 500}
QUICK = {"alphabets": 20, "characters": 20, "drawings": 10, "per_class": 100}


def image_files(root: Path, suffix: str) -> tuple[list[Path], np.ndarray]:
    """Files under ``root`` in sorted order, labelled by their parent folder."""
    files = sorted(root.rglob(f"*{suffix}"))
    parents = sorted({f.parent for f in files})
    index = {p: i for i, p in enumerate(parents)}
    return files, np.array([index[f.parent] for f in files], dtype=np.int64)


def disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build(folder: Path, quick: bool) -> dict[str, Any]:
    """Everything the contenders read, built once; returns ``built.json``'s record."""
    record_path = folder / "built.json"
    if record_path.is_file():
        return json.loads(record_path.read_text())
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    size = QUICK if quick else FULL
    record: dict[str, Any] = {"quick": quick, "prepare": {}, "disk": {}}
    _timed(record, "omniglot-tree", folder / "omniglot", lambda: make_omniglot_tree(
        folder / "omniglot", alphabets=size["alphabets"], characters=size["characters"],
        drawings=size["drawings"], workers=2))  # fmt: skip
    _timed(record, "photo-folder", folder / "photos", lambda: make_photo_folder(
        folder / "photos", per_class=size["per_class"], workers=2))  # fmt: skip
    _timed(record, "decoded.npy", folder / "decoded.npy", lambda: _decode_all(folder))
    _timed(record, "decoded.h5", folder / "decoded.h5", lambda: _write_h5(folder))
    _timed(record, "hf", folder / "hf", lambda: _write_hf(folder))
    for workers in (1, 2):
        dest = folder / f"lw-decoded-{workers}"
        _timed(record, dest.name, dest, lambda w=workers, d=dest: loadwise.pack(
            folder / "omniglot", d, image_mode="L", workers=w, progress=False))  # fmt: skip
    dest = folder / "lw-encoded"
    _timed(record, dest.name, dest, lambda: loadwise.pack(
        folder / "photos", dest, encoded=True, workers=2, progress=False))  # fmt: skip
    files, _ = image_files(folder / "omniglot", ".png")
    record["decoded_samples"], record["decoded_sample_bytes"] = len(files), 105 * 105
    record["encoded_samples"] = len(image_files(folder / "photos", ".jpg")[0])
    record_path.write_text(json.dumps(record, indent=1))
    return record


def _timed(record: dict[str, Any], name: str, path: Path, fn: Any) -> None:
    started = time.perf_counter()
    fn()
    record["prepare"][name] = time.perf_counter() - started
    record["disk"][name] = disk_bytes(path)


def decode_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image.convert("L"), dtype=np.uint8)[None]


def _decode_all(folder: Path) -> None:
    files, labels = image_files(folder / "omniglot", ".png")
    images = np.empty((len(files), 1, 105, 105), dtype=np.uint8)
    for i, path in enumerate(files):
        images[i] = decode_png(path)
    np.save(folder / "decoded.npy", images)
    np.save(folder / "labels.npy", labels)


def _write_h5(folder: Path) -> None:
    import h5py

    images = np.load(folder / "decoded.npy", mmap_mode="r")
    with h5py.File(folder / "decoded.h5", "w") as f:
        f.create_dataset("image", data=images, chunks=(1, *images.shape[1:]))
        f.create_dataset("label", data=np.load(folder / "labels.npy"))


def _write_hf(folder: Path) -> None:
    import datasets

    datasets.disable_progress_bars()
    images = np.load(folder / "decoded.npy")
    labels = np.load(folder / "labels.npy")
    features = datasets.Features({
        "image": datasets.Array3D(shape=images.shape[1:], dtype="uint8"),
        "label": datasets.Value("int64"),
    })  # fmt: skip
    ds = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
    ds.save_to_disk(str(folder / "hf"))
