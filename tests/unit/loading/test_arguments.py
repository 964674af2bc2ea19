"""Issue 18: loader arguments and sample indices are checked where they are given, with a
``LoadwiseError`` naming the value and the fix; one loader is iterated by one iterator at a
time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import loadwise
from loadwise.errors import ConfigError, LoadwiseError, SampleIndexError
from loadwise.loading import DataLoaderConfig


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Any:
    dest = tmp_path_factory.mktemp("args") / "d"
    loadwise.pack({"x": np.arange(40)}, dest, progress=False)
    return loadwise.open(dest, "lazy")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"seed": -1}, r"`generator_seed` must be an integer >= 0. Found: -1"),
        ({"seed": 2**64}, r"below 2\*\*64.*18446744073709551616"),
        ({"seed": 1.5}, r"`generator_seed` must be an integer >= 0. Found: 1.5"),
        ({"seed": "3"}, r"`generator_seed` must be an integer"),
        ({"shuffle": "no"}, r"`shuffle` must be True or False. Found: 'no'"),
        ({"shuffle": 0}, r"`shuffle` must be True or False"),
        ({"batch_size": True}, r"`batch_size` must be an integer >= 1. Found: True"),
        ({"batch_size": 2.0}, r"`batch_size` must be an integer >= 1"),
        ({"num_workers": False}, r"`num_workers` must be an integer >= 0"),
        ({"drop_last": "yes"}, r"`drop_last` must be True or False"),
        ({"device": "gpu"}, r"`device` must be a torch device such as 'cpu'"),
        ({"batch_transform": "normalize"}, r"`batch_transform` must be a callable"),
    ],
)
def test_bad_loader_arguments_are_config_errors(
    data: Any, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        loadwise.loader(data, **options)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_config_error_not_an_assertion(data: Any) -> None:
    with pytest.raises(ConfigError, match=r"device='cuda'.*CUDA is not available.*'cpu'"):
        loadwise.loader(data, 8, device="cuda")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        DataLoaderConfig(device="cuda:0")


def test_config_options_are_checked_too() -> None:
    with pytest.raises(ConfigError, match="`timeout` is in seconds"):
        DataLoaderConfig(timeout="10")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="`pin_memory` must be True, False or None"):
        DataLoaderConfig(pin_memory="auto")  # type: ignore[arg-type]
    assert DataLoaderConfig(generator_seed=2**64 - 1).generator_seed == 2**64 - 1


def test_a_path_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not a path.*loadwise\.open"):
        loadwise.loader(tmp_path, 8)


@pytest.mark.parametrize(
    ("index", "match"),
    [
        ("a", r"must be integers; got \['a'\]"),
        ([2**64], r"sample index 18446744073709551616 is out of range"),
        ([2**63], r"sample index 9223372036854775808 is out of range"),
        (np.array([2**63], np.uint64), r"out of range"),
        ([1.5], r"must be integers; got \[1\.5\]"),
        ([True], r"must be integers"),
        ([[1, 2], [3]], r"must be integers"),
        (slice(0, 3), r"get_batch\(range\(a, b\)\)"),
        ([40], r"sample index 40 is out of range for 40 samples"),
    ],
)
def test_bad_indices_are_sample_index_errors(data: Any, index: Any, match: str) -> None:
    with pytest.raises(SampleIndexError, match=match):
        data.get_batch(index if isinstance(index, list | np.ndarray) else [index])
    if not isinstance(index, list | np.ndarray):
        with pytest.raises(SampleIndexError):
            data[index]


def test_good_indices_of_any_integer_type_still_read(data: Any) -> None:
    assert data.get_batch([1, -1, np.int32(3)])["x"].tolist() == [1, 39, 3]
    assert data.get_batch(np.array([2], np.uint8))["x"].tolist() == [2]
    assert data.get_batch(range(3))["x"].tolist() == [0, 1, 2]
    assert data.get_batch([])["x"].shape == (0,)


def test_a_second_iterator_over_one_loader_is_refused(data: Any) -> None:
    loader = loadwise.loader(data, 4, seed=1)
    first = iter(loader)
    next(first)
    with pytest.raises(ConfigError, match=r"already being iterated.*`\.close\(\)` the first"):
        iter(loader)
    rest = list(first)
    assert len(rest) == 9  # the first iterator kept every batch of its epoch
    state = loader.state_dict()
    assert state["epoch"] == 1 and state["position"] == 0
    second = iter(loader)  # finished: the next epoch may start
    next(second)
    second.close()
    assert len(list(loader)) == 10  # closed: refused no more


def test_an_abandoned_loop_does_not_block_the_next(data: Any) -> None:
    loader = loadwise.loader(data, 4)
    for _ in loader:
        break  # the iterator is dropped at once
    assert len(list(loader)) == 10


def test_every_error_above_is_a_loadwise_error() -> None:
    assert issubclass(ConfigError, LoadwiseError) and issubclass(SampleIndexError, LoadwiseError)
