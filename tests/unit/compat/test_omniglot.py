"""The Omniglot datasets: same items prefetched or on the fly, tasks, workers, bad folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import loadwise
from loadwise.compat.omniglot import (
    OmniglotDataset,
    OmniglotTaskDataset,
    PrefetchedOmniglotDataset,
)
from loadwise.errors import ConfigError, SampleIndexError, SourceError

CHARACTERS, DRAWINGS, SIDE = 12, 5, 105  # the session tree: 3 alphabets x 4 characters x 5


def _files(root: Path) -> list[list[Path]]:
    """Each character's PNGs, characters and drawings in sorted order."""
    folders = sorted(p for p in root.glob("*/*") if p.is_dir())
    return [sorted(folder.iterdir()) for folder in folders]


def _decoded(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        return torch.from_numpy(np.array(image.convert("L")))[None]


@pytest.fixture
def copied(tmp_path: Path, omniglot_tree: Path) -> Path:
    """A private copy of the session tree, for tests that damage it."""
    return Path(shutil.copytree(omniglot_tree, tmp_path / "tree"))


@pytest.mark.parametrize("kind", ["prefetched-folder", "prefetched-packed", "fly", "fly-packed"])
def test_items_are_a_characters_drawings_in_sorted_order(
    kind: str, omniglot_tree: Path, omniglot_packed: Path
) -> None:
    dataset = {
        "prefetched-folder": lambda: PrefetchedOmniglotDataset(omniglot_tree, progress=False),
        "prefetched-packed": lambda: PrefetchedOmniglotDataset(omniglot_packed, progress=False),
        "fly": lambda: OmniglotDataset(omniglot_tree),
        "fly-packed": lambda: OmniglotDataset(omniglot_packed),
    }[kind]()
    files = _files(omniglot_tree)
    assert len(dataset) == CHARACTERS == len(files)
    assert dataset.characters == tuple(
        f"{f[0].parent.parent.name}/{f[0].parent.name}" for f in files
    )
    assert list(dataset.alphabets) == sorted({f[0].parent.parent.name for f in files})
    for index in (0, 5, CHARACTERS - 1):
        drawings, returned = dataset[index]
        assert returned == index
        assert drawings.shape == (DRAWINGS, 1, SIDE, SIDE) and drawings.dtype == torch.uint8
        assert torch.equal(drawings, torch.stack([_decoded(p) for p in files[index]]))
    assert torch.equal(dataset[-1][0], dataset[CHARACTERS - 1][0])
    with pytest.raises(SampleIndexError, match="character index 12"):
        dataset[CHARACTERS]


def test_transform_applies_to_each_drawing_alike(omniglot_tree: Path) -> None:
    def scale(image: torch.Tensor) -> torch.Tensor:
        assert image.shape == (1, SIDE, SIDE)
        return image.float() / 255

    fast = PrefetchedOmniglotDataset(omniglot_tree, scale, progress=False)
    slow = OmniglotDataset(omniglot_tree, scale)
    assert fast[3][0].dtype == torch.float32
    assert torch.equal(fast[3][0], slow[3][0])


def test_prefetch_reports_what_it_holds_and_stays_unchanged(omniglot_packed: Path) -> None:
    dataset = PrefetchedOmniglotDataset(omniglot_packed, progress=False)
    report = dataset.report
    assert (report.characters, report.drawings) == (CHARACTERS, CHARACTERS * DRAWINGS)
    assert report.decoded_bytes == CHARACTERS * DRAWINGS * SIDE * SIDE
    assert report.process_pss > report.decoded_bytes
    assert "12 characters, 60 drawings" in str(report)
    first = dataset[2][0]
    first.fill_(7)  # an item is a copy: changing it cannot change the shared data
    assert not torch.equal(dataset[2][0], first)
    with pytest.raises(ValueError, match="read-only"):
        dataset.drawings_per_class[0] = 99


def test_workers_serve_the_same_characters(omniglot_packed: Path) -> None:
    dataset = PrefetchedOmniglotDataset(omniglot_packed, progress=False)
    loader = DataLoader(dataset, batch_size=3, num_workers=2)
    drawings = torch.cat([batch[0] for batch in loader])
    assert torch.equal(drawings, torch.stack([dataset[i][0] for i in range(CHARACTERS)]))


def test_tasks_are_the_same_prefetched_on_the_fly_or_from_any_dataset(
    omniglot_tree: Path,
) -> None:
    fast = PrefetchedOmniglotDataset(omniglot_tree, progress=False)

    class Listed:  # the documents' item shape, nothing else
        def __len__(self) -> int:
            return len(fast)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return fast[i]

    made = [
        OmniglotTaskDataset(d, n_way=4, k_shot=2, k_query=3, num_tasks=30, seed=4)
        for d in (fast, OmniglotDataset(omniglot_tree), Listed())
    ]
    for i in (0, 13, 29):
        items = [tasks[i] for tasks in made]
        support, support_labels, query, query_labels = items[0]
        assert support.shape == (8, 1, SIDE, SIDE) and query.shape == (12, 1, SIDE, SIDE)
        assert support_labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
        assert query_labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
        for other in items[1:]:
            assert all(torch.equal(a, b) for a, b in zip(items[0], other, strict=True))
    reseeded = OmniglotTaskDataset(fast, n_way=4, k_shot=2, k_query=3, num_tasks=30, seed=5)
    assert not torch.equal(reseeded[0][0], made[0][0][0])


def test_a_task_takes_distinct_drawings_of_distinct_characters(omniglot_packed: Path) -> None:
    dataset = PrefetchedOmniglotDataset(omniglot_packed, progress=False)
    tasks = OmniglotTaskDataset(dataset, n_way=5, k_shot=2, k_query=3, num_tasks=10)
    pool = {c: dataset[c][0] for c in range(CHARACTERS)}
    for support, support_labels, query, query_labels in tasks:
        owners = []
        for way in range(5):
            mine = torch.cat([support[support_labels == way], query[query_labels == way]])
            found = [c for c, d in pool.items() if any(torch.equal(mine[0], x) for x in d)]
            assert len(found) == 1 and all(
                any(torch.equal(m, x) for x in pool[found[0]]) for m in mine
            )
            assert len({m.numpy().tobytes() for m in mine}) == 5
            owners.append(found[0])
        assert len(set(owners)) == 5


@pytest.mark.filterwarnings("ignore:.*pin_memory.*:UserWarning")
def test_dataloader_with_workers_and_pinning_as_the_documents_show(omniglot_packed: Path) -> None:
    tasks = OmniglotTaskDataset(PrefetchedOmniglotDataset(omniglot_packed, progress=False),
                                n_way=3, k_shot=1, k_query=2, num_tasks=10)  # fmt: skip
    loader = DataLoader(tasks, batch_size=4, num_workers=2, pin_memory=True)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    support = torch.cat([b[0] for b in batches])
    assert support.shape == (10, 3, 1, SIDE, SIDE)
    assert all(torch.equal(support[i], tasks[i][0]) for i in range(10))
    assert torch.equal(torch.cat([b[3] for b in batches])[0], torch.tensor([0, 0, 1, 1, 2, 2]))


@pytest.mark.parametrize("workers", [0, 2])
def test_loadwise_loader_serves_the_same_task_batches(omniglot_packed: Path, workers: int) -> None:
    """One ``get_batch`` a batch, no collate: the same tensors as the plain DataLoader's."""
    tasks = OmniglotTaskDataset(PrefetchedOmniglotDataset(omniglot_packed, progress=False),
                                n_way=3, k_shot=1, k_query=2, num_tasks=10)  # fmt: skip
    plain = list(DataLoader(tasks, batch_size=4))
    fast = list(loadwise.loader(tasks, 4, shuffle=False, num_workers=workers))
    assert len(fast) == len(plain) == 3
    for ours, theirs in zip(fast, plain, strict=True):
        assert len(ours) == 4 and all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


def test_task_arguments_out_of_range_are_named(omniglot_tree: Path) -> None:
    dataset = PrefetchedOmniglotDataset(omniglot_tree, progress=False)
    with pytest.raises(ConfigError, match="`n_way`=13 is more than the 12 classes"):
        OmniglotTaskDataset(dataset, n_way=13)
    for bad in (0, -1):
        with pytest.raises(ConfigError, match="num_tasks"):
            OmniglotTaskDataset(dataset, num_tasks=bad)
    with pytest.raises(ConfigError, match="`seed` must be an integer >= 0"):
        OmniglotTaskDataset(dataset, seed=-1)
    folder = f"character folder `{omniglot_tree / dataset.characters[0]}` has 5 samples"
    with pytest.raises(ConfigError, match=f"{folder}.*k_shot \\+ k_query = 6"):
        OmniglotTaskDataset(dataset, n_way=2, k_shot=1, k_query=5)


def test_a_small_character_folder_is_named(copied: Path) -> None:
    small = sorted(copied.glob("*/*"))[6]
    for png in sorted(small.iterdir())[:2]:
        png.unlink()
    for dataset in (PrefetchedOmniglotDataset(copied, progress=False), OmniglotDataset(copied)):
        with pytest.raises(ConfigError, match=f"character folder `{small}` has 3 samples"):
            OmniglotTaskDataset(dataset, n_way=2, k_shot=1, k_query=3)
        assert len(OmniglotTaskDataset(dataset, n_way=2, k_shot=1, k_query=2)) == 2000


def test_an_alphabet_without_characters_is_refused(copied: Path) -> None:
    (copied / "Empty_Alphabet").mkdir()
    for make in (lambda: PrefetchedOmniglotDataset(copied, progress=False),
                 lambda: OmniglotDataset(copied)):  # fmt: skip
        with pytest.raises(
            SourceError, match="alphabet folder `.*Empty_Alphabet` has no character"
        ):
            make()


@pytest.mark.parametrize("bad", ["corrupt.png", "notes.txt"])
def test_unreadable_files_raise_by_default(copied: Path, bad: str) -> None:
    target = sorted(copied.glob("*/*"))[1] / bad
    target.write_bytes(b"\x89PNG\r\n\x1a\n not really" if bad.endswith("png") else b"hello")
    with pytest.raises(SourceError, match=bad):
        PrefetchedOmniglotDataset(copied, progress=False)
    dataset = OmniglotDataset(copied)  # on the fly: found when read
    with pytest.raises(SourceError, match=f"{bad}.*on_error='skip'"):
        dataset[1]


def test_unreadable_files_are_skipped_when_asked(copied: Path) -> None:
    corrupt = sorted(copied.glob("*/*"))[1] / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG broken")
    fly = OmniglotDataset(copied, on_error="skip")
    packed = loadwise.pack(copied, copied.parent / "p.loadwise", on_error="skip", progress=False)
    fast = PrefetchedOmniglotDataset(packed.path, progress=False)
    assert [s.item for s in packed.skipped] == [str(corrupt.relative_to(copied))]
    for dataset in (fly, fast):
        assert dataset.drawings_per_class.tolist() == [DRAWINGS] * CHARACTERS
        assert torch.equal(dataset[1][0], fly[1][0])
    with pytest.raises(ConfigError, match="on_error"):
        OmniglotDataset(copied, on_error="ignore")


def test_prefetching_a_folder_can_skip_unreadable_files(copied: Path) -> None:
    (sorted(copied.glob("*/*"))[1] / "corrupt.png").write_bytes(b"\x89PNG broken")
    fast = PrefetchedOmniglotDataset(copied, on_error="skip", progress=False)
    assert fast.drawings_per_class.tolist() == [DRAWINGS] * CHARACTERS
