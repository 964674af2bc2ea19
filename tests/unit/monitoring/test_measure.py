"""measure(): counts what it iterates, per epoch, with memory; Measurement round-trips."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import torch

from loadwise.errors import ConfigError
from loadwise.monitoring.measure import Measurement, batch_size_of, measure


def _batches(n: int, size: int, pause: float = 0.0) -> Iterator[dict[str, torch.Tensor]]:
    for start in range(0, n, size):
        time.sleep(pause)
        yield {"image": torch.zeros(min(size, n - start), 4), "label": torch.zeros(1)}


def test_counts_samples_of_each_epoch_and_rates_follow() -> None:
    m = measure("x", lambda: _batches(100, 32, pause=0.002), epochs=3)
    assert m.samples_per_epoch == (100, 100, 100)
    assert len(m.epoch_seconds) == 3 and all(s >= 4 * 0.002 for s in m.epoch_seconds)
    assert m.rates == tuple(100 / s for s in m.epoch_seconds)
    assert 0 < m.first_batch_seconds < m.epoch_seconds[0]
    assert m.peak_pss >= m.peak_private > 0 and m.peak_pss == m.peak_private + m.peak_shared
    assert len(m.epoch_end_pss) == 3 and 0 <= m.peak_file <= m.peak_pss


def test_a_loader_object_is_iterated_afresh_each_epoch() -> None:
    class Epochs:
        def __init__(self) -> None:
            self.started = 0

        def __iter__(self) -> Iterator[torch.Tensor]:
            self.started += 1
            return iter([torch.zeros(5, 2), torch.zeros(3, 2)])

    epochs = Epochs()
    m = measure("loader", epochs, epochs=2, memory=False)
    assert epochs.started == 2 and m.samples_per_epoch == (8, 8) and m.peak_pss == 0


def test_max_seconds_cuts_an_epoch_short() -> None:
    m = measure("cut", lambda: _batches(10_000, 10, pause=0.01), epochs=1,
                max_seconds=0.05, memory=False)  # fmt: skip
    assert 0 < m.samples_per_epoch[0] < 10_000 and m.epoch_seconds[0] < 1.0


def test_steady_seconds_adds_epochs_but_reports_the_asked_ones() -> None:
    m = measure("steady", lambda: _batches(50, 10, pause=0.005), epochs=2,
                steady_seconds=0.2, memory=False)  # fmt: skip
    assert len(m.rates) == 2
    assert m.steady_rate >= max(m.rates[1:])


def test_round_trip_through_dict() -> None:
    m = measure("rt", lambda: _batches(20, 8), epochs=2, memory=False, disk_bytes=123)
    again = Measurement.from_dict(m.to_dict())
    assert again == m and m.to_dict()["samples_per_second"] == list(m.rates)


def test_batch_sizes_of_common_shapes() -> None:
    assert batch_size_of(torch.zeros(7, 2)) == 7
    assert batch_size_of({"a": [1, 2, 3]}) == 3
    assert batch_size_of([torch.zeros(4, 1), torch.zeros(4)]) == 4
    assert batch_size_of([1, 2]) == 2


def test_epochs_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="epochs"):
        measure("bad", lambda: [], epochs=0)
