"""Where a loader is in its epochs, as a few plain numbers a checkpoint can hold.

The order of an epoch is a pure function of ``(seed, epoch)`` and this rank's share of it
of ``(rank, world, pad)``; so ``(epoch, position)`` (samples of this rank's share already
handed out) is all a resume needs. Nothing is iterated and discarded to get back there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from loadwise.errors import ResumeError

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

    def to_dict(self) -> dict[str, Any]:
        """Plain ints and bools (safe for ``torch.save`` and JSON), with a format version."""
        return {"version": STATE_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> LoaderState:
        """Parse a ``state_dict``; a missing key or unknown version is a ``ResumeError``."""
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            found = state.get("version") if isinstance(state, Mapping) else type(state).__name__
            raise ResumeError(
                f"not a loadwise loader state (version {STATE_VERSION} expected, found "
                f"{found!r}): pass what `Loader.state_dict()` returned."
            )
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in state]
        if missing:
            raise ResumeError(f"loader state is missing {missing}; it was not made by loadwise.")
        values = {n: state[n] for n in names}
        for name, value in values.items():
            if not isinstance(value, int) or value < 0:
                raise ResumeError(f"loader state `{name}` must be an integer >= 0: {value!r}.")
        return cls(**values)

    def check_fits(self, expected: LoaderState) -> None:
        """Refuse a state whose order differs from this loader's (``expected`` at epoch 0).

        Batch size and worker count may change: the position counts samples, not batches.
        """
        for name, why in (
            ("num_samples", "the dataset has a different number of samples"),
            ("seed", "the seed differs, so the order would differ"),
            ("shuffle", "shuffling was switched"),
            ("world", "the world size changed, so every rank's share would change"),
            ("rank", "each rank must load the state it saved"),
            ("pad_ranks", "`pad_ranks` changed, so the ranks' shares would change"),
        ):
            saved, now = getattr(self, name), getattr(expected, name)
            if saved != now:
                raise ResumeError(
                    f"cannot resume: {why} (saved {name}={saved!r}, this loader has {now!r}). "
                    f"Resume with the same {name}, or start a new run."
                )
