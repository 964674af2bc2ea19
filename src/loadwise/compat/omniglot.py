"""The source documents' Omniglot datasets, on the core: one item per character, and tasks.

``PrefetchedOmniglotDataset`` packs a folder once (or takes a packed dataset) and holds every
drawing in one array in RAM (eager mode): all workers share it, nothing grows by
copy-on-write, and items are copies, so nothing can change it. ``OmniglotDataset`` has the
same interface but decodes PNG files on every read (or memory-maps packed data): the
baseline. ``OmniglotTaskDataset`` turns either into few-shot tasks with the pure sampler of
``loadwise.sampling.episodes``; all tasks of a batch are read together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from loadwise.access.auto import open_dataset
from loadwise.access.budget import stored_bytes
from loadwise.compat.cache import packed_folder
from loadwise.errors import ConfigError, SampleIndexError, SourceError
from loadwise.format.codecs import decode_image
from loadwise.format.spec import MANIFEST_NAME
from loadwise.monitoring.memory import process_memory
from loadwise.sampling.episodes import (
    ClassGroups,
    EpisodeSpec,
    checked_task_ids,
    read_labels,
    sample_tasks,
)
from loadwise.sampling.keys import seed_state
from loadwise.sources.folder import OmniglotFolder
from loadwise.sources.media import image_size_hw

log = logging.getLogger("loadwise")

Transform = Callable[[torch.Tensor], torch.Tensor]
ON_ERROR = ("raise", "skip")
MiB = 2**20


class Drawings(Protocol):
    """Where a character's drawings come from: a packed dataset, or PNG files."""

    counts: np.ndarray
    characters: tuple[str, ...]
    root: Path | None

    def read(self, classes: np.ndarray, drawings: np.ndarray) -> torch.Tensor: ...


class PackedDrawings:
    """Drawings in a packed dataset, grouped by character with one argsort of the labels."""

    def __init__(self, path: Path, mode: str) -> None:
        self.packed = open_dataset(path, mode, fields=("image", "label"))
        labels, names = read_labels(self.packed, "label")
        self.groups = ClassGroups.from_labels(labels, len(names) or None)
        for array in (self.groups.order, self.groups.starts, self.groups.counts):
            array.flags.writeable = False
        self.counts = self.groups.counts
        self.characters = names or tuple(str(c) for c in self.groups.classes.tolist())
        source = self.packed.manifest.source
        from_folder = source.get("kind") == "omniglot-folder" and source.get("root")
        self.root: Path | None = Path(source["root"]) if from_folder else None

    def read(self, classes: np.ndarray, drawings: np.ndarray) -> torch.Tensor:
        """One gather for all of them: a new tensor, never a view of the shared data."""
        image: torch.Tensor = self.packed.get_batch(self.groups.samples(classes, drawings))["image"]
        return image


class FileDrawings:
    """PNG files listed in sorted order, decoded on every read: the per-file baseline."""

    def __init__(self, root: Path, size: tuple[int, int] | None, on_error: str) -> None:
        source = OmniglotFolder(root)
        self.root: Path | None = source.root
        self.characters = source.categories["label"]
        self.size = size
        files: list[list[str]] = [[] for _ in self.characters]
        for _, record in source:
            files[record["label"]].append(str(record["image"].path))
        if on_error == "skip":
            files = [[f for f in group if self._readable(f)] for group in tqdm(files, "check")]
        self.files = tuple(tuple(group) for group in files)
        self.counts = np.array([len(group) for group in self.files], dtype=np.int64)

    def read(self, classes: np.ndarray, drawings: np.ndarray) -> torch.Tensor:
        pixels = [self._decode(self.files[c][d]) for c, d in zip(classes, drawings, strict=True)]
        return torch.from_numpy(np.stack(pixels))

    def _decode(self, path: str) -> np.ndarray:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read drawing `{path}`: {exc}") from exc
        try:
            return decode_image(data, mode="L", size=self.size, name=path)
        except SourceError as exc:
            raise SourceError(f"{exc} (pass on_error='skip' to leave it out)") from exc

    def _readable(self, path: str) -> bool:
        try:
            self._decode(path)
        except SourceError as exc:
            log.warning("loadwise: skipping %s", exc)
            return False
        return True


class _OmniglotBase(Dataset):
    """Item ``i`` = (every drawing of character ``i`` as ``[n, 1, H, W]``, ``i``), sorted."""

    def __init__(self, drawings: Drawings, transform: Transform | None) -> None:
        self.source, self.transform = drawings, transform
        self.characters: tuple[str, ...] = drawings.characters
        self.alphabets = tuple(sorted({c.split("/")[0] for c in self.characters}))

    def __len__(self) -> int:
        return len(self.characters)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self)
        if not -n <= index < n:
            raise SampleIndexError(f"character index {index} is out of range for {n} characters.")
        index = index % n
        count = int(self.drawings_per_class[index])
        classes = np.full(count, index, dtype=np.int64)
        return self.get_drawings(classes, np.arange(count, dtype=np.int64)), index

    @property
    def drawings_per_class(self) -> np.ndarray:
        """How many drawings each character has (read-only)."""
        return self.source.counts

    def get_drawings(self, classes: np.ndarray, drawings: np.ndarray) -> torch.Tensor:
        """Drawing ``drawings[j]`` of character ``classes[j]`` for every ``j``, transformed."""
        images = self.source.read(np.asarray(classes), np.asarray(drawings))
        if self.transform is None:
            return images
        return torch.stack([self.transform(image) for image in images])

    def character_name(self, index: int) -> str:
        """The character's folder, for error messages."""
        root, name = self.source.root, self.characters[index]
        return f"character folder `{root / name}`" if root else f"character `{name}`"


@dataclass(frozen=True)
class PrefetchReport:
    """What prefetching holds and what it cost; ``str()`` is the one-line memory report."""

    characters: int
    drawings: int
    decoded_bytes: int
    seconds: float
    process_pss: int

    def __str__(self) -> str:
        return (
            f"{self.characters:,} characters, {self.drawings:,} drawings, "
            f"{self.decoded_bytes / MiB:,.1f} MiB decoded in one shared copy, "
            f"process PSS {self.process_pss / MiB:,.0f} MiB, {self.seconds:.2f} s"
        )


class PrefetchedOmniglotDataset(_OmniglotBase):
    """Every drawing in RAM once (eager mode): fast, and one copy for all workers.

    ``data_path`` is an Omniglot folder (``alphabet/character/*.png``, packed once into the
    cache) or a packed dataset. ``transform`` is applied to each ``[1, H, W]`` uint8 drawing
    of an item. ``report`` (also logged, and shown on the progress bar) says what it holds.
    """

    def __init__(
        self,
        data_path: str | Path,
        transform: Transform | None = None,
        *,
        image_size: int | tuple[int, int] | None = None,
        on_error: str = "raise",
        progress: bool = True,
    ) -> None:
        started = time.perf_counter()
        with tqdm(total=2, desc="prefetch omniglot", unit="step", disable=not progress) as bar:
            bar.set_postfix_str("pack or find the packed data")
            path = _packed(data_path, image_size_hw(image_size), on_error)
            bar.update(1)
            bar.set_postfix_str("load into RAM, one copy for all workers")
            drawings = PackedDrawings(path, "eager")
            bar.update(1)
            super().__init__(drawings, transform)
            manifest = drawings.packed.manifest
            self.report = PrefetchReport(
                len(self), int(drawings.counts.sum()),
                stored_bytes(manifest, [manifest.field("image")]),
                time.perf_counter() - started, process_memory(include_children=False).total_pss,
            )  # fmt: skip
            bar.set_postfix_str(str(self.report))
        log.info("loadwise: PrefetchedOmniglotDataset: %s", self.report)


class OmniglotDataset(_OmniglotBase):
    """The same items as ``PrefetchedOmniglotDataset``, read on the fly: PNGs decoded per read.

    A packed dataset is memory-mapped (lazy mode) instead. ``on_error="skip"`` checks every
    file once up front and leaves out those that do not decode.
    """

    def __init__(
        self,
        data_path: str | Path,
        transform: Transform | None = None,
        *,
        image_size: int | tuple[int, int] | None = None,
        on_error: str = "raise",
    ) -> None:
        _check_on_error(on_error)
        path = Path(data_path).expanduser()
        drawings: Drawings
        if (path / MANIFEST_NAME).is_file():
            drawings = PackedDrawings(path, "lazy")
        else:
            drawings = FileDrawings(path, image_size_hw(image_size), on_error)
        super().__init__(drawings, transform)


class OmniglotTaskDataset(Dataset):
    """``num_tasks`` few-shot tasks over an Omniglot dataset (or any with the same items).

    Item ``i`` = ``(support [n_way*k_shot, 1, H, W], support_labels, query
    [n_way*k_query, 1, H, W], query_labels)``, labels ``0..n_way-1``; it depends only on
    ``(seed, i)``. ``rotations`` adds each character turned by 90, 180 and 270 degrees.
    """

    def __init__(
        self,
        dataset: Any,
        n_way: int = 5,
        k_shot: int = 1,
        k_query: int = 15,
        num_tasks: int = 2000,
        seed: int = 0,
        *,
        rotations: bool = False,
    ) -> None:
        self.spec = EpisodeSpec(n_way, k_shot, k_query, rotations)
        if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
            raise ConfigError(f"`num_tasks` must be an integer >= 1. Found: {num_tasks!r}.")
        seed_state(seed)  # refuse a bad seed now, not at the first batch
        self.dataset, self.num_tasks, self.seed = dataset, num_tasks, seed
        self.counts = _counts(dataset)
        self.spec.check(self.counts, lambda c: _name(dataset, c))

    def __len__(self) -> int:
        return self.num_tasks

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(part[0] for part in self.get_batch([index]))

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, ...]]:
        """The tasks of a ``DataLoader`` batch, their drawings read in one call."""
        batch = self.get_batch(indices)
        return [tuple(part[j] for part in batch) for j in range(len(indices))]

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, ...]:
        """Stacked tasks: ``(support, support_labels, query, query_labels)``, a batch dim first."""
        ids = checked_task_ids(indices, self.num_tasks)
        tasks = sample_tasks(self.counts, self.spec, self.seed, ids)
        classes, drawings, turns = tasks.flat()
        out = tasks.assemble(_read(self.dataset, classes, drawings), turns)
        return out["support"], out["support_labels"], out["query"], out["query_labels"]


def _packed(data_path: str | Path, size: tuple[int, int] | None, on_error: str) -> Path:
    """The packed form of ``data_path``: itself if packed, else the cached pack of the folder."""
    _check_on_error(on_error)
    path = Path(data_path).expanduser()
    if (path / MANIFEST_NAME).is_file():
        return path
    return packed_folder(path, image_size=size, image_mode="L", on_error=on_error)


def _check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ConfigError(f"`on_error` must be one of {', '.join(ON_ERROR)}. Found: {on_error!r}.")


def _counts(dataset: Any) -> np.ndarray:
    """Drawings per class: asked of our datasets, counted from the items of any other."""
    counts = getattr(dataset, "drawings_per_class", None)
    if counts is None:
        counts = [len(dataset[c][0]) for c in range(len(dataset))]
    return np.asarray(counts, dtype=np.int64)


def _name(dataset: Any, c: int) -> str:
    named = getattr(dataset, "character_name", None)
    return str(named(c)) if callable(named) else f"class {c}"


def _read(dataset: Any, classes: np.ndarray, drawings: np.ndarray) -> torch.Tensor:
    """The drawings of a batch of tasks: one read from our datasets, item by item otherwise."""
    get = getattr(dataset, "get_drawings", None)
    if callable(get):
        images: torch.Tensor = get(classes, drawings)
        return images
    items: dict[int, torch.Tensor] = {}
    for c in np.unique(classes).tolist():
        items[c] = dataset[c][0]
    return torch.stack(
        [items[c][d] for c, d in zip(classes.tolist(), drawings.tolist(), strict=True)]
    )
