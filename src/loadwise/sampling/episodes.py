"""Few-shot episodes: which classes and drawings make task ``i``, as pure functions of (seed, i).

A task is ``n_way`` classes drawn without replacement, each with ``k_shot + k_query`` of its
samples drawn without replacement; labels are ``0..n_way-1`` in the order the classes were
drawn. Task ``i`` depends only on ``(seed, i)``: the same for any worker count, batch size,
order of reading, or after a restart. ``Episodes`` serves tasks of a packed dataset, every
task of a batch gathered with one ``get_batch`` call; rotations by 90-degree multiples make
new classes (the usual Omniglot augmentation) and are applied to the gathered batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from loadwise.errors import ConfigError, SampleIndexError
from loadwise.format.fields import ArrayField
from loadwise.sampling.keys import draw, task_states

#: Rotations per class when ``rotations=True``: 0, 90, 180 and 270 degrees.
ROTATIONS = 4


@dataclass(frozen=True)
class EpisodeSpec:
    """The shape of a task: ``n_way`` classes, ``k_shot`` support and ``k_query`` query each."""

    n_way: int = 5
    k_shot: int = 1
    k_query: int = 15
    rotations: bool = False

    def __post_init__(self) -> None:
        _positive("n_way", self.n_way)
        _positive("k_shot", self.k_shot)
        _positive("k_query", self.k_query, low=0)

    @property
    def per_class(self) -> int:
        """Samples drawn from each class of a task."""
        return self.k_shot + self.k_query

    def check(self, counts: np.ndarray, names: Callable[[int], str]) -> None:
        """Refuse data that cannot make a task: too few classes, or a class too small."""
        factor = ROTATIONS if self.rotations else 1
        if self.n_way > len(counts) * factor:
            extra = f" x {ROTATIONS} rotations" if self.rotations else ""
            raise ConfigError(
                f"`n_way`={self.n_way} is more than the {len(counts)} classes{extra} of the "
                f"data: lower `n_way` or use more classes."
            )
        small = np.flatnonzero(counts < self.per_class)
        if small.size:
            c = int(small[0])
            raise ConfigError(
                f"{names(c)} has {int(counts[c])} samples, but a task takes k_shot + k_query = "
                f"{self.per_class} from each class ({small.size} classes are this small): add "
                f"drawings, remove the folder, or lower `k_shot`/`k_query`."
            )


@dataclass(frozen=True)
class ClassGroups:
    """Sample indices by class: class ``c`` owns ``order[starts[c] : starts[c] + counts[c]]``."""

    classes: np.ndarray  # the label value of each class, ascending
    order: np.ndarray
    starts: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_labels(cls, labels: np.ndarray, num_classes: int | None = None) -> ClassGroups:
        """Group by label with one stable argsort; ``num_classes`` keeps empty classes 0..n-1."""
        labels = np.asarray(labels).reshape(-1)
        if labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0):
            raise ConfigError("labels must be non-negative integers to group samples by class.")
        order = np.argsort(labels, kind="stable").astype(np.int64)
        if num_classes is None:
            classes, counts = np.unique(labels, return_counts=True)
        else:
            classes = np.arange(num_classes)
            counts = np.bincount(labels, minlength=num_classes)[:num_classes]
        starts = np.searchsorted(labels[order], classes).astype(np.int64)
        return cls(classes.astype(np.int64), order, starts, counts.astype(np.int64))

    def samples(self, class_ids: np.ndarray, drawings: np.ndarray) -> np.ndarray:
        """Global sample indices of drawing ``drawings[...]`` of class ``class_ids[...]``."""
        return self.order[self.starts[class_ids] + drawings]


@dataclass(frozen=True)
class Tasks:
    """Tasks of a batch: ``classes``, ``rotations`` ``[T, n_way]``; ``drawings`` ``[T, n, k]``."""

    spec: EpisodeSpec
    task_ids: np.ndarray
    classes: np.ndarray
    rotations: np.ndarray
    drawings: np.ndarray

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(class, drawing, rotation) per sample: every task's support, then every query."""
        k = self.spec.k_shot
        parts = (self.drawings[:, :, :k], self.drawings[:, :, k:])
        classes = np.concatenate([np.broadcast_to(self.classes[..., None], p.shape).ravel()
                                  for p in parts])  # fmt: skip
        turns = np.concatenate([np.broadcast_to(self.rotations[..., None], p.shape).ravel()
                                for p in parts])  # fmt: skip
        return classes, np.concatenate([p.ravel() for p in parts]), turns

    def assemble(self, images: torch.Tensor, turns: np.ndarray) -> dict[str, torch.Tensor]:
        """Split a fresh gather in ``flat()`` order into support/query, turned, with labels."""
        spec, t = self.spec, len(self.task_ids)
        images = _rotated(images, turns) if spec.rotations else images
        n_support = t * spec.n_way * spec.k_shot
        support = images[:n_support].reshape(t, spec.n_way * spec.k_shot, *images.shape[1:])
        query = images[n_support:].reshape(t, spec.n_way * spec.k_query, *images.shape[1:])
        ways = torch.arange(spec.n_way, dtype=torch.int64)
        return {
            "support": support,
            "support_labels": ways.repeat_interleave(spec.k_shot).expand(t, -1).contiguous(),
            "query": query,
            "query_labels": ways.repeat_interleave(spec.k_query).expand(t, -1).contiguous(),
            "classes": torch.from_numpy(self.classes),
            "rotations": torch.from_numpy(self.rotations),
            "index": torch.from_numpy(self.task_ids),
        }


def episode(
    counts: np.ndarray, spec: EpisodeSpec, seed: int, i: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Task ``i``: (class positions ``[n_way]``, rotations ``[n_way]``, drawings ``[n_way, k]``).

    Class positions index ``counts`` (samples per class); drawing ``d`` of class ``c`` is its
    ``d``-th sample. Classes and drawings are drawn without replacement.
    """
    if i < 0:
        raise ConfigError(f"task index must be >= 0. Found: {i}.")
    tasks = sample_tasks(counts, spec, seed, [i])
    return tasks.classes[0], tasks.rotations[0], tasks.drawings[0]


def sample_tasks(counts: np.ndarray, spec: EpisodeSpec, seed: int, task_ids: Any) -> Tasks:
    """The tasks ``task_ids``, drawn together but each from ``(seed, i)`` alone (``keys``).

    Task ``i``'s classes are ``n_way`` (class, rotation) pairs drawn from its stream 0;
    class-rotation ``c``'s drawings are ``k_shot + k_query`` of the class's samples drawn
    from its stream ``1 + c`` (``keys.draw``). Labels follow the order the classes were drawn.
    """
    ids = np.asarray(task_ids, dtype=np.int64).reshape(-1)
    counts = np.asarray(counts, dtype=np.int64)
    factor = ROTATIONS if spec.rotations else 1
    states = task_states(seed, ids)
    chosen = draw(states, 0, len(counts) * factor, spec.n_way)
    classes = chosen // factor
    drawings = draw(states[:, None], 1 + chosen, counts[classes], spec.per_class)
    return Tasks(spec, ids, classes, chosen % factor, drawings)


class Episodes(Dataset):
    """Map-style dataset of ``num_tasks`` few-shot tasks over a packed dataset.

    ``episodes[i]`` and ``get_batch(task_ids)`` give ``support`` ``[.., n_way*k_shot, C, H, W]``,
    ``support_labels``, ``query``, ``query_labels``, ``classes`` (label values), ``rotations``
    (quarter turns) and ``index`` (task ids). A batch is one ``dataset.get_batch`` call.
    """

    def __init__(
        self,
        dataset: Any,
        spec: EpisodeSpec,
        *,
        num_tasks: int,
        seed: int = 0,
        label_field: str = "label",
        image_field: str = "image",
    ) -> None:
        _positive("num_tasks", num_tasks)
        _positive("seed", seed, low=0)
        self.dataset, self.spec, self.num_tasks, self.seed = dataset, spec, num_tasks, seed
        self.image_field = image_field
        labels, names = read_labels(dataset, label_field)
        self.groups = ClassGroups.from_labels(labels, len(names) or None)
        spec.check(self.groups.counts, lambda c: _class_name(dataset, names, self.groups, c))
        if spec.rotations:
            _check_square(dataset, image_field)

    def __len__(self) -> int:
        return self.num_tasks

    def tasks(self, task_ids: Sequence[int] | np.ndarray) -> Tasks:
        """Which classes and samples the tasks ``task_ids`` hold, without reading them."""
        ids = checked_task_ids(task_ids, self.num_tasks)
        return sample_tasks(self.groups.counts, self.spec, self.seed, ids)

    def get_batch(self, task_ids: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """Every task of ``task_ids``, all their samples gathered with one read."""
        tasks = self.tasks(task_ids)
        classes, drawings, turns = tasks.flat()
        samples = self.groups.samples(classes, drawings)
        images = self.dataset.get_batch(samples)[self.image_field]
        out = tasks.assemble(images, turns)
        out["classes"] = torch.from_numpy(self.groups.classes[tasks.classes])
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.get_batch([i]).items()}

    def __getitems__(self, task_ids: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        """Tasks for a plain ``DataLoader``: gathered in one call, then split into items."""
        batch = self.get_batch(task_ids)
        return [{k: v[j] for k, v in batch.items()} for j in range(len(task_ids))]


def episodes(
    dataset: Any,
    label_field: str = "label",
    n_way: int = 5,
    k_shot: int = 1,
    k_query: int = 15,
    *,
    num_tasks: int = 1000,
    seed: int = 0,
    rotations: bool = False,
    image_field: str = "image",
) -> Episodes:
    """Few-shot tasks over a packed dataset (or the path of one, opened eager).

    Task ``i`` depends only on ``(seed, i)``; ``rotations`` adds each class turned by 90,
    180 and 270 degrees as three new classes. Batch it with ``loadwise.loader(tasks, 16)``.
    """
    if isinstance(dataset, str | Path):
        from loadwise.access.auto import open_dataset

        dataset = open_dataset(dataset, "eager", fields=(image_field, label_field))
    spec = EpisodeSpec(n_way, k_shot, k_query, rotations)
    return Episodes(
        dataset, spec, num_tasks=num_tasks, seed=seed,
        label_field=label_field, image_field=image_field,
    )  # fmt: skip


def checked_task_ids(task_ids: Sequence[int] | np.ndarray, num_tasks: int) -> np.ndarray:
    """Task ids as int64, negatives counted from the end; out of range is an ``IndexError``."""
    ids = np.asarray(task_ids, dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < -num_tasks or ids.max() >= num_tasks):
        bad = int(ids[(ids < -num_tasks) | (ids >= num_tasks)][0])
        raise SampleIndexError(f"task index {bad} is out of range for {num_tasks} tasks.")
    return np.where(ids < 0, ids + num_tasks, ids)


def read_labels(dataset: Any, field: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Every sample's label, read alone (not the images), and the label names if any."""
    selected = [f.name for f in getattr(dataset, "fields", ())]
    if field not in selected:
        raise ConfigError(
            f"`label_field` {field!r} is not among the dataset's fields {selected}: open the "
            f"dataset with fields=(image, {field!r}) or name the label field."
        )
    spec = dataset.manifest.field(field)
    if not isinstance(spec, ArrayField) or spec.shape != ():
        raise ConfigError(
            f"`label_field` {field!r} is a {spec.kind} field; labels are one integer per "
            f"sample. Name an integer field."
        )
    labels = dataset.storage().rows(spec, np.arange(len(dataset), dtype=np.int64))
    return labels.reshape(-1), tuple(spec.categories or ())


def _class_name(dataset: Any, names: tuple[str, ...], groups: ClassGroups, c: int) -> str:
    """A class as users know it: the folder it came from, when the data came from one."""
    label = int(groups.classes[c])
    if not names:
        return f"class {label}"
    source = dataset.manifest.source
    if source.get("kind") == "omniglot-folder" and source.get("root"):
        return f"character folder `{Path(source['root']) / names[label]}`"
    return f"class `{names[label]}`"


def _check_square(dataset: Any, field: str) -> None:
    shape = tuple(dataset.manifest.field(field).shape or ())
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ConfigError(
            f"`rotations` turns images by 90 degrees, so they must be square; field "
            f"`{field}` has shape {shape}. Pack with image_size=(S, S) or drop `rotations`."
        )


def _rotated(images: torch.Tensor, turns: np.ndarray) -> torch.Tensor:
    """Turn image ``i`` by ``turns[i]`` quarter turns, in place (``images`` is a fresh gather)."""
    for k in range(1, ROTATIONS):
        picked = torch.from_numpy(np.flatnonzero(turns == k))
        if len(picked):
            images[picked] = torch.rot90(images[picked], k, dims=(-2, -1))
    return images


def _positive(name: str, value: object, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ConfigError(f"`{name}` must be an integer >= {low}. Found: {value!r}.")
