"""Where a loader is in its epochs, as a few plain numbers a checkpoint can hold.

The order of an epoch is a pure function of ``(seed, epoch)`` and this rank's share of it
of ``(rank, world, pad)``; so ``(epoch, position)`` (samples of this rank's share already
handed out) is all a resume needs. Nothing is iterated and discarded to get back there.

Elastic resume (another world size): an epoch interrupted and resumed on a different number
of ranks runs in segments (``sampling/elastic.py``). A state carries the epoch's finished
``segments`` (each one's world and every rank's position in it); ``world``, ``rank`` and
``position`` describe the running segment. Resuming on a new world adds the saved segment
(every rank's position: from all ranks' states, or one state's under lockstep) to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from loadwise.errors import ConfigError, ResumeError
from loadwise.sampling.elastic import Segment, check_segment

STATE_VERSION = 1


@dataclass(frozen=True)
class LoaderState:
    """``position`` samples of epoch ``epoch`` were yielded; the rest identify the order."""

    epoch: int
    position: int
    num_samples: int
    seed: int
    shuffle: bool
    rank: int
    world: int
    pad_ranks: bool
    #: Finished segments of this epoch: ``(world, positions of every rank)``, oldest first.
    segments: tuple[Segment, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain ints, bools and lists (safe for ``torch.save`` and JSON), with a version."""
        plain = asdict(self)
        plain["segments"] = [[w, list(p)] for w, p in self.segments]
        return {"version": STATE_VERSION, **plain}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> LoaderState:
        """Parse a ``state_dict``; a missing key or unknown version is a ``ResumeError``."""
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            found = state.get("version") if isinstance(state, Mapping) else type(state).__name__
            raise ResumeError(
                f"not a loadwise loader state (version {STATE_VERSION} expected, found "
                f"{found!r}): pass what `Loader.state_dict()` returned."
            )
        names = [f.name for f in fields(cls) if f.name != "segments"]
        missing = [n for n in names if n not in state]
        if missing:
            raise ResumeError(f"loader state is missing {missing}; it was not made by loadwise.")
        values = {n: state[n] for n in names}
        for name, value in values.items():
            if not isinstance(value, int) or value < 0:
                raise ResumeError(f"loader state `{name}` must be an integer >= 0: {value!r}.")
        try:
            segments = tuple(check_segment(s) for s in state.get("segments", ()))
        except (ConfigError, TypeError, ValueError, IndexError) as exc:
            raise ResumeError(f"loader state `segments` is damaged: {exc}") from None
        return cls(**values, segments=segments)

    def check_fits(self, expected: LoaderState) -> None:
        """Refuse a state whose order differs from this loader's (``expected`` at epoch 0).

        Batch size, worker count and world size may change: positions count samples, and
        a new world re-partitions what the epoch has left (``resume_point``).
        """
        for name, why in (
            ("num_samples", "the dataset has a different number of samples"),
            ("seed", "the seed differs, so the order would differ"),
            ("shuffle", "shuffling was switched"),
            ("pad_ranks", "`pad_ranks` changed, so the ranks' shares would change"),
        ):
            saved, now = getattr(self, name), getattr(expected, name)
            if saved != now:
                raise ResumeError(
                    f"cannot resume: {why} (saved {name}={saved!r}, this loader has {now!r}). "
                    f"Resume with the same {name}, or start a new run."
                )


def resume_point(
    states: Sequence[LoaderState], rank: int, world: int
) -> tuple[int, int, tuple[Segment, ...]]:
    """``(epoch, position, segments)`` for rank ``rank`` of ``world`` from the saved states.

    ``states`` are every saved rank's (exact for any positions), or one rank's, standing
    for all (ranks step together under DDP, so their positions are equal). On the same
    world each rank continues its share; on another, the saved segment is finished and the
    new ranks share what it left, starting at 0.
    """
    saved = _consistent(states)
    if len(states) == 1:
        positions = (saved.position,) * saved.world
    else:
        positions = tuple(s.position for s in sorted(states, key=lambda s: s.rank))
    if saved.world == world:
        return saved.epoch, positions[rank], saved.segments
    if not any(positions):  # nothing of the saved segment was yielded: start it anew
        return saved.epoch, 0, saved.segments
    return saved.epoch, 0, (*saved.segments, (saved.world, positions))


def _consistent(states: Sequence[LoaderState]) -> LoaderState:
    """The first state, once all are checked to be of one run and one step."""
    if not states:
        raise ResumeError("no loader state given: pass `state_dict()` of one or every rank.")
    first = states[0]
    if len(states) > 1 and sorted(s.rank for s in states) != list(range(first.world)):
        raise ResumeError(
            f"pass one loader state, or one of every rank 0..{first.world - 1}; found ranks "
            f"{sorted(s.rank for s in states)}."
        )
    for other in states[1:]:
        for name in ("epoch", "world", "segments", "num_samples", "seed", "shuffle", "pad_ranks"):
            if getattr(other, name) != getattr(first, name):
                raise ResumeError(
                    f"the loader states differ in `{name}` (rank {first.rank}: "
                    f"{getattr(first, name)!r}, rank {other.rank}: {getattr(other, name)!r}): "
                    f"they were not saved at the same step of one run."
                )
    return first
