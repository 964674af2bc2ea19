"""Per-stage timings of the batch being made, in whichever process makes it.

``with span("gather"): ...`` adds the block's seconds to the stage's total for this batch;
``take()`` returns the totals (``{stage: seconds}``) and starts the next batch. A span inside
another counts for the inner stage only (a decode inside a gather is decode time, not both).

Off by default: then ``span`` is a flag check returning a shared do-nothing context, and
nothing is recorded. A monitored loader turns it on (``enable()``) in each process that
makes batches, so the cost (two ``perf_counter`` calls a span) is paid only while monitoring.
Dependency-free, so any layer (access modes, transforms) can mark its stages. One batch at
a time per process: the DataLoader's workers and the main loop each make batches serially.
"""

from __future__ import annotations

from time import perf_counter
from types import TracebackType

_on = False
_totals: dict[str, float] = {}
_open: list[_Span] = []


class _Span:
    """Times one block: its own seconds go to ``stage``, and out of the enclosing span's."""

    __slots__ = ("inner", "stage", "started")

    def __init__(self, stage: str) -> None:
        self.stage, self.inner, self.started = stage, 0.0, 0.0

    def __enter__(self) -> _Span:
        _open.append(self)
        self.started = perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        took = perf_counter() - self.started
        if _open and _open[-1] is self:
            _open.pop()
            if _open:
                _open[-1].inner += took
        _totals[self.stage] = _totals.get(self.stage, 0.0) + took - self.inner


class _Off:
    """The span when timing is off: enters and exits, records nothing."""

    __slots__ = ()

    def __enter__(self) -> _Off:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


_OFF = _Off()


def span(stage: str) -> _Span | _Off:
    """A context timing ``stage`` for the current batch (does nothing while timing is off)."""
    return _Span(stage) if _on else _OFF


def record(stage: str, seconds: float) -> None:
    """Add ``seconds`` to ``stage`` for the current batch (ignored while timing is off)."""
    if _on:
        _totals[stage] = _totals.get(stage, 0.0) + seconds


def enable(on: bool = True) -> None:
    """Turn timing on (or off) in this process; the current batch's totals are dropped."""
    global _on
    _on = on
    take()


def enabled() -> bool:
    return _on


def take() -> dict[str, float]:
    """This batch's seconds per stage, and a fresh start for the next batch."""
    global _totals
    totals, _totals = _totals, {}
    _open.clear()
    return totals
