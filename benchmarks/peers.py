"""Issue 19's rows: encoded PNG and JPEG through the peers people use, and decoded photos.

``extend(folder, record)`` builds what these rows read beside ``data.py``'s forms (once,
recorded in ``built.json``): ``lw-png`` (the PNG tree packed encoded), ``hf-png`` /
``hf-jpeg`` (Hugging Face ``Image`` columns of the same bytes), ``wds-png`` / ``wds-jpeg``
(WebDataset tar shards, 8 each), ``lw-photos`` (the photos decoded at 224x224, 150 KB rows)
and ``photos.npy`` (the same array, for the limits), ``lw-photos256`` (decoded at their
own 256x256: the bytes cached mode holds, for the warm-cache row). Every row reads the same seeded
batches of 64 except WebDataset, which only iterates (its shuffle buffer of 1,000).
LitData and Mosaic Streaming pull a CUDA torchvision and pin an older numpy than this
project's torch 2.13 needs: their rows run only where ``pip install litdata
mosaicml-streaming`` was done by hand in another environment, and are skipped otherwise.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

import loadwise
from benchmarks.contenders import CROP, Contender, _gather_epochs, _loadwise, plain_loader
from benchmarks.data import _timed, image_files

SHARDS = 8


def extend(folder: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Build the forms issue 19's rows read, where ``built.json`` lacks them."""
    steps: dict[str, Callable[[], Any]] = {
        "lw-png": lambda: loadwise.pack(folder / "omniglot", folder / "lw-png", encoded=True,
                                        image_mode="L", workers=2, progress=False),
        "hf-png": lambda: _write_hf_images(folder / "omniglot", ".png", folder / "hf-png"),
        "hf-jpeg": lambda: _write_hf_images(folder / "photos", ".jpg", folder / "hf-jpeg"),
        "wds-png": lambda: _write_tars(folder / "omniglot", ".png", folder / "wds-png"),
        "wds-jpeg": lambda: _write_tars(folder / "photos", ".jpg", folder / "wds-jpeg"),
        "lw-photos": lambda: loadwise.pack(folder / "photos", folder / "lw-photos",
                                           image_size=(224, 224), workers=2, progress=False),
        "photos.npy": lambda: _photos_npy(folder),
        "lw-photos256": lambda: loadwise.pack(folder / "photos", folder / "lw-photos256",
                                              workers=2, progress=False),
    }  # fmt: skip
    changed = False
    for name, step in steps.items():
        if name not in record["prepare"]:
            _timed(record, name, folder / name, step)
            changed = True
    if changed:
        (folder / "built.json").write_text(json.dumps(record, indent=1))
    return record


def _write_hf_images(root: Path, suffix: str, dest: Path) -> None:
    import datasets

    datasets.disable_progress_bars()
    files, labels = image_files(root, suffix)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    images = [{"bytes": f.read_bytes(), "path": None} for f in files]
    ds = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
    ds.save_to_disk(str(dest))


def _write_tars(root: Path, suffix: str, dest: Path) -> None:
    """WebDataset shards: ``{key}.{png,jpg}`` and ``{key}.cls``, samples in a seeded order."""
    files, labels = image_files(root, suffix)
    order = np.random.default_rng(0).permutation(len(files))
    dest.mkdir(parents=True)
    for shard, part in enumerate(np.array_split(order, SHARDS)):
        with tarfile.open(dest / f"{shard:03d}.tar", "w") as tar:
            for i in part.tolist():
                for ext, data in ((suffix[1:], files[i].read_bytes()),
                                  ("cls", str(int(labels[i])).encode())):  # fmt: skip
                    info = tarfile.TarInfo(f"{i:07d}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


def _photos_npy(folder: Path) -> None:
    ds = loadwise.open(folder / "lw-photos", "lazy", fields=["image", "label"])
    batch = ds.get_batch(np.arange(len(ds)))
    np.save(folder / "photos.npy", batch["image"].numpy())
    np.save(folder / "photos-labels.npy", batch["label"].numpy())


# --- Hugging Face datasets with an Image column: rows decoded by datasets ------------------


def _center(image: Image.Image) -> np.ndarray:
    w, h = image.size
    left, top = (w - CROP) // 2, (h - CROP) // 2
    array = np.asarray(image.convert("RGB").crop((left, top, left + CROP, top + CROP)))
    return array.transpose(2, 0, 1)


def _hf_png(batch: dict[str, list[Any]]) -> dict[str, Any]:
    images = np.stack([np.asarray(im.convert("L"))[None] for im in batch["image"]])
    return {"image": torch.from_numpy(images), "label": torch.tensor(batch["label"])}


def _hf_jpeg(batch: dict[str, list[Any]]) -> dict[str, Any]:
    images = np.stack([_center(im) for im in batch["image"]])
    return {"image": torch.from_numpy(images), "label": torch.tensor(batch["label"])}


class _Whole:
    """A batch sampler's batch through ``__getitems__`` (HF decodes the rows together)."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> Any:
        return self.ds[[i]]

    def __getitems__(self, indices: list[int]) -> Any:
        return self.ds[indices]


def _identity(batch: Any) -> Any:
    return batch


def hf_images(kind: str) -> Callable[..., Contender]:
    def build(folder: Path, record: dict[str, Any], workers: int) -> Contender:
        import datasets

        ds = datasets.load_from_disk(str(folder / f"hf-{kind}"))
        ds.set_transform(_hf_png if kind == "png" else _hf_jpeg)
        loader = plain_loader(_Whole(ds), workers)  # type: ignore[arg-type]
        loader.collate_fn = _identity
        return Contender(lambda: loader, record["prepare"][f"hf-{kind}"],
                         record["disk"][f"hf-{kind}"])  # fmt: skip

    return build


# --- WebDataset: tar shards, a shuffle buffer, decoded per sample in the workers ----------


def _wds_png(sample: dict[str, Any]) -> tuple[torch.Tensor, int]:
    with Image.open(io.BytesIO(sample["png"])) as image:
        array = np.asarray(image.convert("L"))[None]
    return torch.from_numpy(array.copy()), int(sample["cls"])


def _wds_jpeg(sample: dict[str, Any]) -> tuple[torch.Tensor, int]:
    with Image.open(io.BytesIO(sample["jpg"])) as image:
        array = _center(image)
    return torch.from_numpy(array.copy()), int(sample["cls"])


def webdataset(kind: str) -> Callable[..., Contender]:
    def build(folder: Path, record: dict[str, Any], workers: int) -> Contender:
        import webdataset as wds

        shards = sorted(str(p) for p in (folder / f"wds-{kind}").glob("*.tar"))
        decode = _wds_png if kind == "png" else _wds_jpeg
        pipeline = (
            wds.WebDataset(shards, shardshuffle=len(shards), seed=0, empty_check=False)
            .shuffle(1000).map(decode).batched(64)
        )  # fmt: skip
        loader = DataLoader(pipeline, batch_size=None, num_workers=workers,
                            persistent_workers=workers > 0)  # fmt: skip
        return Contender(lambda: _as_dicts(loader), record["prepare"][f"wds-{kind}"],
                         record["disk"][f"wds-{kind}"])  # fmt: skip

    return build


def _as_dicts(loader: DataLoader[Any]) -> Iterator[dict[str, torch.Tensor]]:
    for images, labels in loader:
        yield {"image": images, "label": labels}


# --- loadwise and the limits on the new forms -----------------------------------------------


def loadwise_form(
    name: str, mode: str, workers: int, crop: bool = False
) -> Callable[..., Contender]:
    def build(folder: Path, record: dict[str, Any], _: int) -> Contender:
        return _loadwise(folder / name, mode, workers, crop, record["prepare"][name],
                         record["disk"][name])  # fmt: skip

    return build


def photos_limit(memmap: bool) -> Callable[..., Contender]:
    def build(folder: Path, record: dict[str, Any], workers: int) -> Contender:
        labels = np.load(folder / "photos-labels.npy")
        if memmap:
            images = np.load(folder / "photos.npy", mmap_mode="r")
            np.asarray(images).sum()  # warm the page cache, as lazy's epoch 2 is
        else:
            images = np.load(folder / "photos.npy")
        return Contender(_gather_epochs(images, labels), record["prepare"]["photos.npy"],
                         record["disk"]["photos.npy"])  # fmt: skip

    return build


#: name -> (workload, builder, DataLoader workers), as ``contenders.CONTENDERS``.
PEERS: dict[str, tuple[str, Callable[..., Contender], int]] = {
    "PNG HF datasets w0": ("png", hf_images("png"), 0),
    "PNG HF datasets w2": ("png", hf_images("png"), 2),
    "PNG WebDataset w0": ("png", webdataset("png"), 0),
    "PNG WebDataset w2": ("png", webdataset("png"), 2),
    "PNG loadwise lazy w0": ("png", loadwise_form("lw-png", "lazy", 0), 0),
    "PNG loadwise lazy w2": ("png", loadwise_form("lw-png", "lazy", 2), 2),
    "JPEG HF datasets w0": ("encoded", hf_images("jpeg"), 0),
    "JPEG HF datasets w2": ("encoded", hf_images("jpeg"), 2),
    "JPEG WebDataset w0": ("encoded", webdataset("jpeg"), 0),
    "JPEG WebDataset w2": ("encoded", webdataset("jpeg"), 2),
    "JPEG loadwise lazy w0": ("encoded", loadwise_form("lw-encoded", "lazy", 0, True), 0),
    "JPEG loadwise cached w0": ("encoded", loadwise_form("lw-encoded", "cached", 0, True), 0),
    "photos numpy (limit)": ("photos", photos_limit(False), 0),
    "photos memmap (limit)": ("photos", photos_limit(True), 0),
    "photos loadwise eager w0": ("photos", loadwise_form("lw-photos", "eager", 0), 0),
    "photos loadwise lazy w0": ("photos", loadwise_form("lw-photos", "lazy", 0), 0),
    "photos256 loadwise eager w0": ("photos", loadwise_form("lw-photos256", "eager", 0, True), 0),
}
