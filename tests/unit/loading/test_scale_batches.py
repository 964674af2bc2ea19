"""Loaders with a scale schedule: batch sides (and sizes) from (seed, epoch, batch), resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.contracts.resume import assert_resumes_exactly

import loadwise
from loadwise.errors import ConfigError
from loadwise.loading.cuts import ScaledCut
from loadwise.loading.sampler import EpochBatchSampler
from loadwise.sampling.order import epoch_order
from loadwise.sampling.scales import Progressive, RandomScales
from loadwise.transforms import Resize

SCHEDULE = RandomScales(16, low=0.5, high=2.0, multiple=8, keep_pixels=True)


@pytest.fixture(scope="module")
def rgb_packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(5)
    dest = tmp_path_factory.mktemp("rgb") / "rgb.loadwise"
    images = rng.integers(0, 256, (90, 3, 16, 16), dtype=np.uint8)
    loadwise.pack({"image": images, "label": np.arange(90) % 3}, dest, progress=False)
    return dest


def _config(**options: object) -> loadwise.DataLoaderConfig:
    base = loadwise.DataLoaderConfig(batch_size=6, scales=SCHEDULE, batch_transform=Resize())
    return base.with_options(**options)


def test_each_batch_has_its_drawn_side_and_size_and_every_sample_once(rgb_packed: Path) -> None:
    ds = loadwise.open(rgb_packed, "eager")
    for workers in (0, 2):
        loader = loadwise.loader(ds, config=_config(num_workers=workers, generator_seed=3))
        for epoch in range(2):
            batches = list(loader)
            assert len(batches) == len(loader) or epoch == 0  # len() counts the next epoch
            sides = SCHEDULE.scales(3, epoch, len(batches)).tolist()
            sizes = SCHEDULE.batch_sizes(6, epoch, np.array(sides)).tolist()
            assert [b["scale"] for b in batches] == sides and len(set(sides)) > 1
            assert all(b["epoch"] == epoch for b in batches)
            assert [len(b["index"]) for b in batches[:-1]] == sizes[:-1]
            assert all(b["image"].shape[-2:] == (s, s) for b, s in zip(batches, sides, strict=True))
            order = torch.cat([b["index"] for b in batches]).numpy()
            np.testing.assert_array_equal(order, epoch_order(90, 3, epoch))


def test_every_rank_gets_the_same_side_at_the_same_step() -> None:
    def sides(rank: int) -> list[tuple[int, int]]:
        sampler = EpochBatchSampler(
            lambda e: epoch_order(101, 0, e), 101, 6, False, rank, 3, cut=ScaledCut(SCHEDULE, 9)
        )
        sampler.set_epoch(4)
        return [(b.scale, len(b)) for b in sampler]  # type: ignore[attr-defined]

    assert sides(0) == sides(1) == sides(2)
    cut = ScaledCut(SCHEDULE, 9)
    other = EpochBatchSampler(lambda e: np.arange(101), 101, 6, False, 1, 3, cut=cut)
    other.set_epoch(4)
    assert len(other) == len(sides(0))


def test_a_resume_inside_a_batch_gets_the_rest_of_it_at_its_side() -> None:
    mine = epoch_order(200, 1, 0)
    cut = ScaledCut(SCHEDULE, 2)
    whole = cut.batches(mine, 0, 0, 6, False)
    inside = len(whole[0]) + len(whole[1]) + 1  # one sample into batch 2
    resumed = cut.batches(mine, 0, inside, 6, False)
    np.testing.assert_array_equal(resumed[0], whole[2][1:])
    assert resumed[0].scale == whole[2].scale  # type: ignore[attr-defined]
    for got, want in zip(resumed[1:], whole[3:], strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.scale == want.scale  # type: ignore[attr-defined]


def test_resume_keeps_the_contract_with_random_sides(rgb_packed: Path) -> None:
    """The shared helper counts fixed-size batches: sides vary here, sizes do not."""
    ds = loadwise.open(rgb_packed, "eager")
    fixed = _config(scales=RandomScales(16, multiple=8))
    assert_resumes_exactly(lambda **kw: loadwise.loader(ds, seed=4, config=fixed, **kw))


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_is_exact_with_varying_batch_sizes(rgb_packed: Path, workers: int) -> None:
    """Saved after every batch of two epochs, resumed in a fresh loader (another batch size
    too): the same samples at the same sides as the run that never stopped."""
    ds = loadwise.open(rgb_packed, "eager")

    def run(loader: loadwise.Loader, epochs: int) -> list[tuple[int, int, int]]:
        return [
            (b["epoch"], b["scale"], int(i))
            for _ in range(epochs)
            for b in loader
            for i in b["index"]
        ]

    reference = run(loadwise.loader(ds, seed=4, config=_config()), 2)
    saver = loadwise.loader(ds, seed=4, config=_config(num_workers=workers))
    done, states = 0, []
    for _ in range(2):
        for batch in saver:
            done += len(batch["index"])
            states.append((done, saver.state_dict()))
    assert done == len(reference) == 180
    for done, state in states[:: max(len(states) // 6, 1)]:
        for size in (6, 4):
            fresh = loadwise.loader(ds, seed=4, config=_config(batch_size=size))
            fresh.load_state_dict(state)
            rest = run(fresh, 2 - fresh.next_epoch)
            keep = [(e, i) for e, _, i in rest]
            assert keep == [(e, i) for e, _, i in reference[done:]], f"stop after {done}"
            if size == 6:
                assert rest == reference[done:]


def test_progressive_resizing_sets_each_epochs_side(rgb_packed: Path) -> None:
    ds = loadwise.open(rgb_packed, "eager")
    config = _config(scales=Progressive(8, 24, 0, 2, multiple=8))
    loader = loadwise.loader(ds, config=config)
    seen = [{b["image"].shape[-1] for b in loader} for _ in range(3)]
    assert seen == [{8}, {16}, {24}]


def test_schedules_that_cannot_work_are_refused(rgb_packed: Path) -> None:
    with pytest.raises(ConfigError, match="drop_last"):
        _config(drop_last=True)
    with pytest.raises(ConfigError, match="Progressive or RandomScales"):
        _config(scales=[224, 448])
    plain = torch.utils.data.TensorDataset(torch.zeros(10, 3, 4, 4))
    with pytest.raises(ConfigError, match="get_batch"):
        loadwise.loader(plain, config=_config())


def test_length_buckets_and_scales_are_not_combined() -> None:
    from loadwise.errors import ConfigError
    from loadwise.loading import DataLoaderConfig
    from loadwise.sampling.scales import Progressive

    with pytest.raises(ConfigError, match="`bucket_by_length`.*or `scales`"):
        DataLoaderConfig(bucket_by_length=True, scales=Progressive(160, 192, 0, 10))
