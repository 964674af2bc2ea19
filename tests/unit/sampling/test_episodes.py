"""Episode sampling: pure in (seed, i), without replacement, one gather per batch, rotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import loadwise
from loadwise.errors import ConfigError, SampleIndexError
from loadwise.sampling.episodes import (
    ClassGroups,
    EpisodeSpec,
    episode,
    episodes,
    sample_tasks,
)

CLASSES = 9
SIDE = 3


def _labels() -> np.ndarray:
    """Class ``c`` has ``6 + c`` samples, shuffled so classes are not contiguous ranges."""
    labels = np.concatenate([np.full(6 + c, c) for c in range(CLASSES)])
    return np.random.default_rng(3).permutation(labels).astype(np.int64)


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Square int32 images whose pixels spell the sample index: ``9 * i + position``."""
    labels = _labels()
    n = len(labels)
    images = (np.arange(n)[:, None] * SIDE * SIDE + np.arange(SIDE * SIDE)).astype(np.int32)
    columns = {"image": images.reshape(n, 1, SIDE, SIDE), "label": labels, "extra": labels * 2}
    names = {"label": [f"glyph{c}" for c in range(CLASSES)]}
    dest = tmp_path_factory.mktemp("episodes") / "glyphs.loadwise"
    loadwise.pack(
        loadwise.sources.ArraySource(columns, names), dest, shard_bytes=300, progress=False
    )
    return dest


def _sample_of(image: torch.Tensor) -> int:
    """Which sample an image is, whatever it was turned by (its smallest pixel is 9 * i)."""
    return int(image.min()) // (SIDE * SIDE)


@given(st.lists(st.integers(0, 12), min_size=1, max_size=80), st.booleans())
def test_groups_hold_each_sample_once_under_its_label(labels: list[int], dense: bool) -> None:
    array = np.array(labels, dtype=np.int64)
    groups = ClassGroups.from_labels(array, 13 if dense else None)
    assert sorted(groups.order.tolist()) == list(range(len(labels)))
    assert groups.counts.sum() == len(labels)
    for c, label in enumerate(groups.classes.tolist()):
        members = groups.order[groups.starts[c] : groups.starts[c] + groups.counts[c]]
        assert set(array[members].tolist()) <= {label}
        assert len(members) == labels.count(label)
    if dense:
        assert groups.classes.tolist() == list(range(13))


@settings(max_examples=60)
@given(
    st.lists(st.integers(2, 25), min_size=3, max_size=30),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(0, 2**32),
    st.integers(0, 10**6),
    st.booleans(),
)
def test_a_task_is_pure_and_without_replacement(counts, n_way, k, seed, i, rotations) -> None:
    spec = EpisodeSpec(n_way, k_shot=1, k_query=k - 1 if k > 1 else 1, rotations=rotations)
    sizes = np.array(counts)
    classes, turns, drawings = episode(sizes, spec, seed, i)
    again = episode(sizes, spec, seed, i)
    assert all(np.array_equal(a, b) for a, b in zip((classes, turns, drawings), again, strict=True))
    assert len(set(zip(classes.tolist(), turns.tolist(), strict=True))) == n_way
    assert drawings.shape == (n_way, spec.per_class)
    for c, row in zip(classes, drawings, strict=True):
        assert len(set(row.tolist())) == spec.per_class
        assert row.min() >= 0 and row.max() < sizes[c]
    assert (turns == 0).all() or rotations


def test_a_task_does_not_depend_on_its_batch_or_on_other_seeds() -> None:
    spec, counts = EpisodeSpec(5, 2, 3), np.full(40, 8)
    alone = sample_tasks(counts, spec, seed=7, task_ids=[11])
    among = sample_tasks(counts, spec, seed=7, task_ids=[3, 11, 5])
    assert np.array_equal(alone.drawings[0], among.drawings[1])
    assert np.array_equal(alone.classes[0], among.classes[1])
    other = sample_tasks(counts, spec, seed=8, task_ids=[11])
    assert not np.array_equal(alone.classes, other.classes)


def test_tasks_cover_classes_evenly_over_many_tasks() -> None:
    tasks = sample_tasks(np.full(10, 5), EpisodeSpec(5, 1, 1), 0, np.arange(2000))
    seen = np.bincount(tasks.classes.ravel(), minlength=10)
    assert seen.min() > 0.85 * seen.mean() and seen.max() < 1.15 * seen.mean()


@pytest.mark.parametrize(
    ("arguments", "named"),
    [({"n_way": 0}, "n_way"), ({"k_shot": 0}, "k_shot"), ({"k_query": -1}, "k_query"),
     ({"n_way": True}, "n_way")],
)  # fmt: skip
def test_spec_refuses_bad_sizes(arguments: dict[str, int], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        EpisodeSpec(**arguments)


def test_batch_gathers_the_right_samples_once(packed: Path) -> None:
    tasks = episodes(packed, n_way=4, k_shot=2, k_query=3, num_tasks=50, seed=1)
    labels = _labels()
    batch = tasks.get_batch([4, 17, 2])
    assert batch["support"].shape == (3, 8, 1, SIDE, SIDE)
    assert batch["query"].shape == (3, 12, 1, SIDE, SIDE)
    assert batch["index"].tolist() == [4, 17, 2]
    for t in range(3):
        assert batch["support_labels"][t].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
        assert batch["query_labels"][t].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
        support = [_sample_of(im) for im in batch["support"][t]]
        query = [_sample_of(im) for im in batch["query"][t]]
        assert len(set(support + query)) == 20  # no sample twice within a task
        for samples, part in ((support, "support_labels"), (query, "query_labels")):
            chosen = batch["classes"][t][batch[part][t]]
            assert labels[samples].tolist() == chosen.tolist()


def test_items_equal_rows_of_batches_and_iteration_stops(packed: Path) -> None:
    tasks = episodes(packed, n_way=3, k_shot=1, k_query=2, num_tasks=6, seed=5)
    batch = tasks.get_batch(range(6))
    for i, item in enumerate(tasks):
        assert all(torch.equal(item[k], batch[k][i]) for k in batch)
    assert i == 5
    assert torch.equal(tasks[-1]["support"], batch["support"][5])
    with pytest.raises(SampleIndexError, match="task index 6"):
        tasks[6]


def test_rotations_turn_whole_classes_by_quarter_turns(packed: Path) -> None:
    tasks = episodes(packed, n_way=30, k_shot=1, k_query=2, num_tasks=4, rotations=True)
    batch = tasks.get_batch([0, 1])
    plain = loadwise.open(packed, "eager")
    turned = 0
    for t in range(2):
        for j, image in enumerate(batch["query"][t]):
            way = int(batch["query_labels"][t][j])
            k = int(batch["rotations"][t][way])
            original = plain.get_batch([_sample_of(image)])["image"][0]
            assert torch.equal(image, torch.rot90(original, k, dims=(-2, -1)))
            turned += k > 0
    assert turned > 0
    assert sorted(set(batch["rotations"].ravel().tolist())) == [0, 1, 2, 3]


def test_workers_and_the_loader_see_the_same_tasks(packed: Path) -> None:
    tasks = episodes(packed, n_way=3, k_shot=1, k_query=2, num_tasks=20, seed=2)
    seen = {}
    for workers in (0, 2):
        batches = list(
            loadwise.loader(tasks, batch_size=4, shuffle=True, seed=9, num_workers=workers)
        )
        seen[workers] = {int(i): b["support"][j] for b in batches for j, i in enumerate(b["index"])}
    assert sorted(seen[0]) == list(range(20))
    assert all(torch.equal(seen[0][i], seen[2][i]) for i in range(20))
    assert all(torch.equal(seen[0][i], tasks[i]["support"]) for i in range(20))


def test_too_many_ways_or_too_small_classes_are_refused(packed: Path) -> None:
    with pytest.raises(ConfigError, match="`n_way`=10 is more than the 9 classes"):
        episodes(packed, n_way=10)
    with pytest.raises(ConfigError, match="x 4 rotations"):
        episodes(packed, n_way=37, rotations=True)
    with pytest.raises(ConfigError, match=r"class `glyph0` has 6 samples.*k_shot \+ k_query = 7"):
        episodes(packed, n_way=2, k_shot=2, k_query=5)


def test_bad_arguments_name_themselves(packed: Path, arrays_packed: Path) -> None:
    for bad in (0, -3):
        with pytest.raises(ConfigError, match="num_tasks"):
            episodes(packed, num_tasks=bad)
    dataset = loadwise.open(packed, "eager", fields=("image",))
    with pytest.raises(ConfigError, match="`label_field` 'label' is not among"):
        episodes(dataset)
    with pytest.raises(ConfigError, match="must be square"):
        episodes(arrays_packed, n_way=2, k_shot=1, k_query=1, rotations=True)
