"""``create_dataloaders``: train/val/test loaders from an image folder, split without copying.

A split is a ``SplitView``: a list of indices into one dataset that keeps ``get_batch``, so
each batch is still one gather. Splits are stratified per class and seeded, so the same
seed gives the same split on every machine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from torch.utils.data import Dataset

from loadwise.access.auto import open_dataset
from loadwise.compat.datasets import ImageDataset, Indices
from loadwise.compat.loaders import EfficientDataLoader
from loadwise.errors import ConfigError, SampleIndexError
from loadwise.loading import DataLoaderConfig

SPLITS = ("train", "val", "test")
log = logging.getLogger("loadwise")


class Batched(Protocol):
    """A sized dataset that serves a batch of indices in one call."""

    def __len__(self) -> int: ...

    def __getitems__(self, indices: Indices) -> list[Any]: ...

    def get_batch(self, indices: Indices) -> Any: ...


class SplitView(Dataset):
    """Samples ``indices`` of ``base``, as a map-style dataset that keeps ``get_batch``."""

    def __init__(self, base: Batched, indices: Indices) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.base.__getitems__(self._mapped([index]))[0]

    def __getitems__(self, indices: Indices) -> list[Any]:
        return self.base.__getitems__(self._mapped(indices))

    def get_batch(self, indices: Indices) -> Any:
        """The base's batch for these positions of the split: still one gather."""
        return self.base.get_batch(self._mapped(indices))

    @property
    def dataset(self) -> Batched:
        """The dataset the indices point into, as ``torch.utils.data.Subset.dataset``."""
        return self.base

    @property
    def classes(self) -> list[str]:
        return list(getattr(self.base, "classes", []))

    def _mapped(self, indices: Indices) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self.indices)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise SampleIndexError(f"index {bad} is out of range for a split of {n} samples.")
        return self.indices[idx]


def stratified_split(
    labels: np.ndarray, fraction: float | Sequence[float], seed: int, held_out: int
) -> list[np.ndarray]:
    """``[rest, held_1, ..., held_k]``: per class, ``fraction * n`` (rounded half up) samples
    to each held-out part (``fraction`` may give one per part), at least one kept in
    ``rest``; each class shuffled on its own seed."""
    fractions = [fraction] * held_out if isinstance(fraction, int | float) else list(fraction)
    parts: list[list[np.ndarray]] = [[] for _ in range(held_out + 1)]
    for number, label in enumerate(np.unique(labels)):
        members = np.random.default_rng([seed, number]).permutation(np.flatnonzero(labels == label))
        most = (len(members) - 1) // max(held_out, 1)
        taken = 0
        for part in range(held_out):
            take = min(int(fractions[part] * len(members) + 0.5), most)
            parts[part + 1].append(members[taken : taken + take])
            taken += take
        parts[0].append(members[taken:])
    return [np.sort(np.concatenate(p)) if p else np.empty(0, np.int64) for p in parts]


def create_dataloaders(
    data_root: str | Path,
    batch_size: int = 32,
    img_size: int | tuple[int, int] = 224,
    num_workers: int = 0,
    val_split: float = 0.2,
    seed: int = 0,
    test_split: float | None = None,
) -> tuple[EfficientDataLoader, EfficientDataLoader, EfficientDataLoader]:
    """Train, val and test loaders of ``(images, labels)`` batches; only train shuffles.

    How the splits are formed: ``data_root`` with ``train/`` (and ``val/``, ``test/``) uses
    those folders, splitting a missing one off train; else one class-per-folder tree is
    split per class: ``val_split`` of each class to val, ``test_split`` (default: the same
    as ``val_split``) to test, the rest to train. So ``val_split=0.0`` alone leaves val and
    test empty: pass ``test_split`` (or a ``test/`` folder) for a test set. An empty split
    is logged as a warning naming the argument that would fill it.
    """
    if not 0 <= val_split < 0.5:
        raise ConfigError(f"`val_split` must be in [0, 0.5). Found: {val_split!r}.")
    test_split = val_split if test_split is None else test_split
    if not isinstance(test_split, int | float) or not 0 <= test_split < 0.5:
        raise ConfigError(f"`test_split` must be in [0, 0.5). Found: {test_split!r}.")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"`seed` must be an integer >= 0. Found: {seed!r}.")
    views = _split_views(Path(data_root), img_size, (val_split, test_split), seed)
    for name, view in views.items():
        if len(view) == 0:
            log.warning(
                "create_dataloaders: the %s split of `%s` is empty; %s",
                name,
                data_root,
                _FILL[name],
            )
    config = DataLoaderConfig(batch_size=batch_size, num_workers=num_workers, generator_seed=seed)
    train, val, test = (
        EfficientDataLoader(views[name], config.with_options(shuffle=name == "train"))
        for name in SPLITS
    )
    return train, val, test


#: What fills each split when it comes out empty (said in the warning).
_FILL = {
    "train": "the data is all held out: lower `val_split` / `test_split`, or add samples.",
    "val": "pass `val_split` > 0 (e.g. 0.1), or add a `val/` folder.",
    "test": "pass `test_split` > 0 (e.g. 0.1), or add a `test/` folder.",
}


def _split_views(
    root: Path, img_size: int | tuple[int, int], fractions: tuple[float, float], seed: int
) -> dict[str, SplitView]:
    """One view per split: given subfolders as they are, missing ones split off train
    (``fractions``: of val and of test)."""
    if not (root / "train").is_dir():
        whole = ImageDataset(root, img_size)
        parts = stratified_split(_labels(whole), fractions, seed, held_out=2)
        return {name: SplitView(whole, part) for name, part in zip(SPLITS, parts, strict=True)}
    train = ImageDataset(root / "train", img_size)
    views: dict[str, SplitView] = {}
    for name in SPLITS[1:]:
        if (root / name).is_dir():
            given = ImageDataset(root / name, img_size)
            _check_classes(train, given, root / name)
            views[name] = SplitView(given, np.arange(len(given)))
    missing = [name for name in SPLITS if name not in views]
    wanted = [fractions[SPLITS.index(name) - 1] for name in missing[1:]]
    parts = stratified_split(_labels(train), wanted, seed, held_out=len(missing) - 1)
    views.update({name: SplitView(train, p) for name, p in zip(missing, parts, strict=True)})
    return views


def _labels(dataset: ImageDataset) -> np.ndarray:
    """All labels, read alone (no images) from the packed dataset."""
    with open_dataset(dataset.packed.root, "lazy", fields=["label"]) as labels:
        return np.asarray(labels.get_batch(np.arange(len(labels)))["label"])


def _check_classes(train: ImageDataset, other: ImageDataset, where: Path) -> None:
    if other.classes != train.classes:
        raise ConfigError(
            f"`{where}` has classes {other.classes}, but train/ has {train.classes}: labels "
            f"would not match. Give every split the same class folders (empty ones are fine)."
        )
