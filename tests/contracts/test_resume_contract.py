"""Every resumable loader keeps the resume contract (``tests/contracts/resume.py``): each mode
through ``loadwise.loader``, few-shot episodes and tasks, and the compat loaders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.contracts.compare import indices_of
from tests.contracts.resume import Key, assert_resumes_exactly, content_key
from tests.data import write_class_tree

import loadwise
from loadwise import (
    DataLoaderConfig,
    DataLoaderFactory,
    EfficientDataLoader,
    ImageDataset,
    MemoryEfficientDataset,
    OmniglotTaskDataset,
    PrefetchedOmniglotDataset,
    create_dataloaders,
)

MODES = ("eager", "lazy", "cached", "streaming")


@pytest.fixture
def photos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """3 classes of 10 photos; compat datasets pack them into a cache of this test's own."""
    monkeypatch.setenv("LOADWISE_CACHE", str(tmp_path / "cache"))
    return write_class_tree(tmp_path / "photos", classes=3, per_class=10)


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_resumes_exactly(arrays_packed: Path, mode: str) -> None:
    with loadwise.open(arrays_packed, mode) as data:
        assert_resumes_exactly(lambda **kw: loadwise.loader(data, seed=3, **kw), batch_size=32)


def test_drop_last_resumes_exactly(arrays_packed: Path) -> None:
    with loadwise.open(arrays_packed, "eager") as data:
        make = lambda **kw: loadwise.loader(data, seed=3, drop_last=True, **kw)  # noqa: E731
        assert_resumes_exactly(make, batch_size=32, other_batch_size=None)


def test_episodes_resume_exactly(omniglot_packed: Path) -> None:
    with loadwise.open(omniglot_packed, "eager") as data:
        tasks = loadwise.episodes(data, n_way=3, k_shot=1, k_query=2, num_tasks=40, seed=1)
        assert_resumes_exactly(lambda **kw: loadwise.loader(tasks, seed=3, **kw))


def test_omniglot_tasks_resume_exactly(omniglot_packed: Path) -> None:
    characters = PrefetchedOmniglotDataset(omniglot_packed, progress=False)
    tasks = OmniglotTaskDataset(characters, n_way=3, k_shot=1, k_query=2, num_tasks=40)
    assert_resumes_exactly(lambda **kw: loadwise.loader(tasks, seed=3, **kw), key=content_key(0, 2))


def _efficient(photos: Path) -> Callable[..., EfficientDataLoader]:
    data = MemoryEfficientDataset(photos, image_size=8, image_mode="L")
    config = DataLoaderConfig(generator_seed=3)
    return lambda batch_size, num_workers: EfficientDataLoader(
        data, config.with_options(batch_size=batch_size, num_workers=num_workers)
    )


def _factory(photos: Path) -> Callable[..., EfficientDataLoader]:
    data = ImageDataset(photos, image_size=8)
    return lambda **kw: DataLoaderFactory.create_dataloader(data, generator_seed=3, **kw)


def _train_split(photos: Path) -> Callable[..., EfficientDataLoader]:
    return lambda batch_size, num_workers: create_dataloaders(
        photos, batch_size, img_size=8, num_workers=num_workers, seed=3
    )[0]


#: The compat loaders: how to make one, and what tells its samples apart.
COMPAT: dict[str, tuple[Callable[[Path], Callable[..., EfficientDataLoader]], Key]] = {
    "EfficientDataLoader": (_efficient, indices_of),
    "DataLoaderFactory.create_dataloader": (_factory, content_key(0)),
    "create_dataloaders train": (_train_split, content_key(0)),
}


@pytest.mark.parametrize("name", COMPAT)
def test_compat_loaders_resume_through_their_loader(photos: Path, name: str) -> None:
    """``EfficientDataLoader.loader`` is the ``loadwise.Loader`` underneath."""
    make, key = COMPAT[name]
    made = make(photos)
    assert_resumes_exactly(lambda **kw: made(**kw).loader, batch_size=4, key=key)


@pytest.mark.parametrize("name", COMPAT)
def test_compat_loaders_resume_themselves(photos: Path, name: str) -> None:
    make, key = COMPAT[name]
    assert_resumes_exactly(make(photos), batch_size=4, key=key)
