"""Every contender as ``build(folder, record, workers) -> Contender``: what to iterate per epoch.

All read the same seeded order (``epoch_order(n, 0, epoch)``, batches of 64) and yield
uint8 image tensors with int64 labels. The limits need no DataLoader; the baselines are the
plain ``DataLoader`` ways people write; loadwise runs with the options its tuner picks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

import loadwise
from benchmarks.data import decode_png, image_files
from loadwise.format.reader import read_manifest
from loadwise.loading.autotune import tuned_config
from loadwise.sampling.order import batches, epoch_order

BATCH, SEED, CROP = 64, 0, 224
TUNE_ENV = "LOADWISE_BENCH_TUNE_SECONDS"


@dataclass
class Contender:
    """What ``measure`` iterates each epoch, plus the one-time preparation and disk cost."""

    epochs_of: Callable[[], Iterable[Any]]
    prepare_seconds: float = 0.0
    disk_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class SeededBatches(Sampler[list[int]]):
    """The shared order as lists of indices; each iteration is the next epoch."""

    def __init__(self, n: int) -> None:
        self.n, self.epoch = n, 0

    def __iter__(self) -> Iterator[list[int]]:
        order = epoch_order(self.n, SEED, self.epoch)
        self.epoch += 1
        for b in batches(order, BATCH):
            yield b.tolist()

    def __len__(self) -> int:
        return -(-self.n // BATCH)


def plain_loader(dataset: Dataset[Any], workers: int) -> DataLoader[Any]:
    return DataLoader(dataset, batch_sampler=SeededBatches(len(dataset)),  # type: ignore[arg-type]
                      num_workers=workers, persistent_workers=workers > 0)  # fmt: skip


# --- the limits: no DataLoader, one fancy-index gather per batch ---------------------------


def _gather_epochs(images: np.ndarray, labels: np.ndarray) -> Callable[[], Iterable[Any]]:
    epoch = iter(range(1 << 30))

    def one_epoch() -> Iterator[dict[str, torch.Tensor]]:
        for idx in batches(epoch_order(len(images), SEED, next(epoch)), BATCH):
            yield {"image": torch.from_numpy(images[idx]), "label": torch.from_numpy(labels[idx])}

    return one_epoch


def numpy_limit(folder: Path, record: dict[str, Any], workers: int) -> Contender:
    started = time.perf_counter()
    images, labels = np.load(folder / "decoded.npy"), np.load(folder / "labels.npy")
    load = time.perf_counter() - started
    prepare = record["prepare"]["decoded.npy"] + load
    return Contender(_gather_epochs(images, labels), prepare, 0, {"decoded_bytes": images.nbytes})


def memmap_limit(folder: Path, record: dict[str, Any], workers: int) -> Contender:
    images = np.load(folder / "decoded.npy", mmap_mode="r")
    labels = np.load(folder / "labels.npy")
    np.asarray(images).sum()  # warm the page cache
    disk = record["disk"]["decoded.npy"]
    return Contender(_gather_epochs(images, labels), record["prepare"]["decoded.npy"], disk)


# --- per-file baseline: open + decode each file in __getitem__ ----------------------------


class PerFile(Dataset[Any]):
    def __init__(self, files: list[Path], labels: np.ndarray, crop: int | None) -> None:
        self.files, self.labels, self.crop = files, labels, crop

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self.crop is None:
            return torch.from_numpy(decode_png(self.files[i])), int(self.labels[i])
        with Image.open(self.files[i]) as image:
            w, h = image.size
            left, top = (w - self.crop) // 2, (h - self.crop) // 2
            array = np.asarray(image.convert("RGB").crop((left, top, left + self.crop,
                                                          top + self.crop)))  # fmt: skip
        return torch.from_numpy(array.transpose(2, 0, 1).copy()), int(self.labels[i])


def per_file(folder: Path, record: dict[str, Any], workers: int) -> Contender:
    files, labels = image_files(folder / "omniglot", ".png")
    loader = plain_loader(PerFile(files, labels, None), workers)
    return Contender(lambda: loader, 0.0, record["disk"]["omniglot-tree"])


def per_file_jpeg(folder: Path, record: dict[str, Any], workers: int) -> Contender:
    files, labels = image_files(folder / "photos", ".jpg")
    loader = plain_loader(PerFile(files, labels, CROP), workers)
    return Contender(lambda: loader, 0.0, record["disk"]["photo-folder"])


# --- naive prefetch: every image decoded into a Python list at init -----------------------


class Prefetched(Dataset[Any]):
    def __init__(self, files: list[Path], labels: np.ndarray) -> None:
        self.images = [torch.from_numpy(decode_png(f)) for f in files]
        self.labels = [int(x) for x in labels]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], self.labels[i]


def naive_prefetch(folder: Path, record: dict[str, Any], workers: int) -> Contender:
    files, labels = image_files(folder / "omniglot", ".png")
    started = time.perf_counter()
    dataset = Prefetched(files, labels)
    prepare = time.perf_counter() - started
    loader = plain_loader(dataset, workers)
    return Contender(lambda: loader, prepare, record["disk"]["omniglot-tree"])


# --- HDF5 (h5py) and Hugging Face datasets --------------------------------------------------


class H5(Dataset[Any]):
    """One file, chunked per sample; each worker opens its own handle on first use."""

    def __init__(self, path: Path) -> None:
        import h5py

        self.path, self.handle = path, cast("h5py.File | None", None)
        with h5py.File(path, "r") as f:
            self.n = len(f["label"])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self.handle is None:
            import h5py

            self.handle = h5py.File(self.path, "r")
        return torch.from_numpy(self.handle["image"][i]), int(self.handle["label"][i])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "handle": None}


def hdf5(folder: Path, record: dict[str, Any], workers: int) -> Contender:
    loader = plain_loader(H5(folder / "decoded.h5"), workers)
    prepare = record["prepare"]["decoded.npy"] + record["prepare"]["decoded.h5"]
    return Contender(lambda: loader, prepare, record["disk"]["decoded.h5"])


def hf_datasets(folder: Path, record: dict[str, Any], workers: int) -> Contender:
    import datasets

    ds = datasets.load_from_disk(str(folder / "hf")).with_format("torch")
    loader = plain_loader(ds, workers)
    prepare = record["prepare"]["decoded.npy"] + record["prepare"]["hf"]
    return Contender(lambda: loader, prepare, record["disk"]["hf"])


# --- loadwise, each mode, with the options its tuner picks --------------------------------


def _loadwise(path: Path, mode: str, workers: int | None, crop: bool, prepare: float,
              disk: int) -> Contender:  # fmt: skip
    started = time.perf_counter()
    encoded = read_manifest(path).field("image").kind == "image"
    # encoded images are cut while they decode (batch buffers and worker slots hold 224s);
    # decoded arrays are cropped as a view of each batch below, and so is cached mode, whose
    # row compares its warm gather with eager's on the same decoded 256x256 bytes
    at_read = crop and encoded and mode != "cached"
    dataset = loadwise.open(path, mode, fields=["image", "label"],
                            crop=(CROP, CROP) if at_read else None)  # fmt: skip
    opened = time.perf_counter() - started
    if workers is None:
        seconds = float(os.environ.get(TUNE_ENV, "1.0"))
        few = [{"num_workers": 0}, {"num_workers": 2, "prefetch_factor": 2}]  # quick runs
        config = tuned_config(
            dataset, BATCH, seconds=seconds, candidates=few if seconds < 1 else None
        )
    else:
        config = loadwise.DataLoaderConfig(batch_size=BATCH, num_workers=workers)
    run = loadwise.loader(dataset, config=config.with_options(generator_seed=SEED))
    extra = {"num_workers": config.num_workers, "prefetch_factor": config.prefetch_factor,
             "memory_efficient": config.memory_efficient, "open_seconds": opened}  # fmt: skip
    if not crop or at_read:
        return Contender(lambda: run, prepare + opened, disk, extra)
    lo = (256 - CROP) // 2

    def cropped() -> Iterator[Any]:
        for batch in run:
            yield {**batch, "image": batch["image"][:, :, lo : lo + CROP, lo : lo + CROP]}

    return Contender(cropped, prepare + opened, disk, extra)


def loadwise_decoded(mode: str, workers: int | None = None) -> Callable[..., Contender]:
    def build(folder: Path, record: dict[str, Any], _: int) -> Contender:
        name = "lw-decoded-2"
        return _loadwise(folder / name, mode, workers, False, record["prepare"][name],
                         record["disk"][name])  # fmt: skip

    return build


def loadwise_encoded(mode: str, workers: int | None = None) -> Callable[..., Contender]:
    def build(folder: Path, record: dict[str, Any], _: int) -> Contender:
        name = "lw-encoded"
        return _loadwise(folder / name, mode, workers, True, record["prepare"][name],
                         record["disk"][name])  # fmt: skip

    return build


#: name -> (workload, builder, DataLoader workers). Runs in this order. Names ending in
#: "spawn" start workers with spawn (macOS's default, and Linux's from Python 3.14), which
#: pickles the dataset into each worker instead of sharing the parent's pages by fork.
SPAWN_SUFFIX = " spawn"
CONTENDERS: dict[str, tuple[str, Callable[..., Contender], int]] = {
    "numpy (limit)": ("decoded", numpy_limit, 0),
    "memmap (limit)": ("decoded", memmap_limit, 0),
    "per-file PIL w0": ("decoded", per_file, 0),
    "per-file PIL w2": ("decoded", per_file, 2),
    "naive list w0": ("decoded", naive_prefetch, 0),
    "naive list w2": ("decoded", naive_prefetch, 2),
    "naive list w2 spawn": ("decoded", naive_prefetch, 2),
    "h5py w0": ("decoded", hdf5, 0),
    "h5py w2": ("decoded", hdf5, 2),
    "HF datasets w0": ("decoded", hf_datasets, 0),
    "HF datasets w2": ("decoded", hf_datasets, 2),
    "loadwise eager": ("decoded", loadwise_decoded("eager"), 0),
    "loadwise eager w2": ("decoded", loadwise_decoded("eager", 2), 2),
    "loadwise eager w2 spawn": ("decoded", loadwise_decoded("eager", 2), 2),
    "loadwise lazy": ("decoded", loadwise_decoded("lazy"), 0),
    "loadwise cached": ("decoded", loadwise_decoded("cached"), 0),
    "loadwise streaming": ("decoded", loadwise_decoded("streaming"), 0),
    "JPEG per-file PIL w0": ("encoded", per_file_jpeg, 0),
    "JPEG per-file PIL w2": ("encoded", per_file_jpeg, 2),
    "JPEG loadwise lazy": ("encoded", loadwise_encoded("lazy"), 0),
    "JPEG loadwise lazy w2": ("encoded", loadwise_encoded("lazy", 2), 2),
    "JPEG loadwise cached": ("encoded", loadwise_encoded("cached"), 0),
    "JPEG loadwise streaming": ("encoded", loadwise_encoded("streaming"), 0),
}
