"""stages: per-batch seconds of each stage, off unless a monitored loader turns them on."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from loadwise import stages


@pytest.fixture(autouse=True)
def switched_off() -> Iterator[None]:
    stages.enable(False)  # as a process starts (a monitored loader may have run before)
    yield
    stages.enable(False)


def test_off_by_default_records_nothing() -> None:
    assert not stages.enabled()
    with stages.span("gather"):
        time.sleep(0.001)
    stages.record("decode", 1.0)
    assert stages.take() == {}


def test_a_nested_span_counts_for_the_inner_stage_only() -> None:
    stages.enable()
    with stages.span("gather"):
        time.sleep(0.02)
        with stages.span("decode"):
            time.sleep(0.03)
    took = stages.take()
    assert set(took) == {"gather", "decode"}
    assert 0.03 <= took["decode"] < 0.2
    assert 0.02 <= took["gather"] < 0.03 + 0.02  # its own time, without the decode inside
    assert stages.take() == {}  # taken once, then a fresh batch


def test_spans_of_one_stage_add_up_and_errors_still_count() -> None:
    stages.enable()
    for _ in range(2):
        with stages.span("transform"):
            time.sleep(0.005)
    with pytest.raises(ValueError), stages.span("transform"):
        raise ValueError("a failing transform")
    stages.record("transfer", 0.25)
    took = stages.take()
    assert took["transform"] >= 0.01 and took["transfer"] == 0.25
