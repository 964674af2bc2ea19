"""Large gathers pick torch's threads or one thread by measured speed, and follow the load."""

from __future__ import annotations

import numpy as np
import torch

from loadwise.gather import rows


def test_the_faster_way_is_kept_and_the_slower_retried_ever_less_often() -> None:
    choice = rows._Choice()
    assert choice.threaded() is True
    choice.record(True, 1e9)  # threads: slow (a loaded machine)
    assert choice.threaded() is False
    choice.record(False, 5e9)
    picks = []
    for _ in range(600):
        threaded = choice.threaded()
        picks.append(threaded)
        choice.record(threaded, 1e9 if threaded else 5e9)
    tries = [i for i, p in enumerate(picks) if p]
    assert 3 <= len(tries) <= 6  # gaps 16, 32, 64, 128, 256: backing off
    assert np.all(np.diff(tries) > 0) and np.diff(tries)[-1] > np.diff(tries)[0]
    tried = 0
    for _ in range(choice.MAX_GAP + 20):  # the machine went quiet: threads faster once tried
        threaded = choice.threaded()
        tried += threaded
        choice.record(threaded, 9e9 if threaded else 5e9)
    assert tried > 5  # ... and kept from then on (one thread checked every EXPLORE-th)


def test_either_way_gathers_the_same_rows() -> None:
    source = np.arange(400 * 1024, dtype=np.uint8).reshape(400, 1024)
    picks = np.array([5, 399, 0, 5] * 40, dtype=np.int64)
    for _ in range(40):  # both ways get used
        assert np.array_equal(rows.take_rows(source, picks), source[picks])
    if torch.get_num_threads() > 1:
        assert set(rows._CHOICE.rates) == {True, False}
