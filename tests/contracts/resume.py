"""The resume contract, as one helper: ``assert_resumes_exactly``.

A loader's ``state_dict()`` taken anywhere (mid-epoch, after an epoch's last batch while its
loop is still open, between epochs), loaded into a fresh loader, must make it yield exactly
the samples the uninterrupted run had not yet yielded, in the same order, epoch by epoch,
also with a different batch size and with 0 or 2 workers on either side of the restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.contracts.compare import indices_of

#: ``make_loader(batch_size=..., num_workers=...)``: a fresh loader over the same data and seed.
MakeLoader = Callable[..., Any]
#: What identifies each sample of a batch, in order (default: its ``index`` field).
Key = Callable[[Any], list[Any]]
#: A run: one list of sample keys per epoch.
Epochs = list[list[Any]]


@dataclass(frozen=True)
class StopPoint:
    """Where a run is interrupted: after ``batches`` batches of ``epoch`` (inside its loop),
    or, with ``loop_done``, after that epoch's loop has finished."""

    name: str
    epoch: int
    batches: int
    loop_done: bool = False


def assert_resumes_exactly(
    make_loader: MakeLoader,
    epochs: int = 2,
    *,
    batch_size: int = 8,
    other_batch_size: int | None = 5,
    key: Key = indices_of,
) -> None:
    """Interrupt runs of ``make_loader`` at several stop points, resume each in fresh loaders,
    and check every continuation yields exactly the rest of the uninterrupted run.

    ``other_batch_size`` resumes with another batch size too (None where it may not change).
    """
    assert epochs >= 2, "resume: needs 2 epochs at least, to cross an epoch boundary"
    reference = _run(make_loader(batch_size=batch_size, num_workers=0), epochs, key)
    for epoch in reference:
        assert len(set(epoch)) == len(epoch), "resume: `key` gives two samples of an epoch alike"
    stops = _stop_points(reference, batch_size)
    for saved_with in (0, 2):
        saver = make_loader(batch_size=batch_size, num_workers=saved_with)
        run, states = _run_saving(saver, epochs, key, stops)
        del saver  # its workers end now, not when a failure's traceback is freed
        assert run == reference, f"resume: a run with {saved_with} workers has another order"
        for stop, state in zip(stops, states, strict=True):
            rest = _rest(reference, stop, batch_size)
            for size, workers in _restarts(batch_size, other_batch_size, saved_with):
                got = _resumed(make_loader(batch_size=size, num_workers=workers), state, rest, key)
                what = (f"resume {stop.name} (saved with {saved_with} workers; resumed with "
                        f"batch size {size}, {workers} workers)")  # fmt: skip
                _assert_continues(got, rest, what)


def content_key(*parts: int) -> Key:
    """A key for batches without ``index`` (tuples such as ``(images, labels)``): each
    sample's bytes in the tensors ``batch[p]`` for every ``p`` in ``parts``."""

    def key(batch: Any) -> list[Any]:
        rows = zip(*(batch[p] for p in parts), strict=True)
        return [b"".join(t.numpy().tobytes() for t in row) for row in rows]

    return key


def _stop_points(reference: Epochs, batch_size: int) -> list[StopPoint]:
    """Mid-epoch at two places, after an epoch's last batch, and between epochs."""
    per_epoch = -(-len(reference[0]) // batch_size)
    assert per_epoch >= 2, f"resume: needs 2 batches an epoch at least, found {per_epoch}"
    return [
        StopPoint("after the first batch", 0, 1),
        StopPoint("mid-epoch in epoch 1", 1, per_epoch // 2),
        StopPoint("after the last batch of epoch 0", 0, per_epoch),
        StopPoint("between epochs 0 and 1", 0, per_epoch, loop_done=True),
    ]


def _restarts(batch_size: int, other: int | None, saved_with: int) -> list[tuple[int, int]]:
    """(batch size, workers) of the fresh loaders: the other worker count, the same one,
    and another batch size."""
    restarts = [(batch_size, 2 - saved_with), (batch_size, saved_with)]
    return restarts + ([(other, saved_with)] if other is not None else [])


def _run(loader: Any, epochs: int, key: Key) -> Epochs:
    """``epochs`` passes over ``loader``: the keys of each epoch's samples, in order."""
    return [[k for batch in loader for k in key(batch)] for _ in range(epochs)]


def _run_saving(loader: Any, epochs: int, key: Key, stops: list[StopPoint]) -> tuple[Epochs, list]:
    """Like ``_run``, saving ``loader.state_dict()`` at each of ``stops`` on the way."""
    run: Epochs = []
    states: dict[StopPoint, dict] = {}
    for epoch in range(epochs):
        run.append([])
        for count, batch in enumerate(loader, start=1):
            run[-1] += key(batch)
            for stop in stops:
                if (stop.epoch, stop.batches, stop.loop_done) == (epoch, count, False):
                    states[stop] = loader.state_dict()
        for stop in stops:
            if stop.loop_done and stop.epoch == epoch:
                states[stop] = loader.state_dict()
    return run, [states[stop] for stop in stops]


def _rest(reference: Epochs, stop: StopPoint, batch_size: int) -> Epochs:
    """What the uninterrupted run yields after ``stop``: the rest of its epoch (unless
    nothing is left of it), then every later epoch."""
    rest = reference[stop.epoch][stop.batches * batch_size :]
    return ([rest] if rest else []) + reference[stop.epoch + 1 :]


def _resumed(loader: Any, state: dict, rest: Epochs, key: Key) -> Epochs:
    """``loader`` resumed from ``state``: the keys of one pass per epoch left in ``rest``."""
    loader.load_state_dict(state)
    return [[k for batch in loader for k in key(batch)] for _ in rest]


def _assert_continues(got: Epochs, rest: Epochs, what: str) -> None:
    """The resumed passes are exactly ``rest``: the rest of an epoch, then whole epochs."""
    for number, (passed, wanted) in enumerate(zip(got, rest, strict=True)):
        assert passed == wanted, (
            f"{what}: pass {number} yields {len(passed)} samples, expected {len(wanted)}; "
            f"first difference at position {_first_difference(passed, wanted)}"
        )


def _first_difference(got: list[Any], wanted: list[Any]) -> int:
    return next(
        (i for i, (a, b) in enumerate(zip(got, wanted, strict=False)) if a != b),
        min(len(got), len(wanted)),
    )
