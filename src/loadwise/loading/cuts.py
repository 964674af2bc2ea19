"""How an epoch's share is cut into batches when batches carry context (epoch, scale).

The sampler's default cut is fixed-size batches of plain index arrays. A ``Cut`` replaces
it when a batch must say more: ``ScaledCut`` gives each batch its side (and size) from a
scale schedule (``sampling/scales.py``); ``TaggedCut`` keeps fixed sizes but tags every
batch with its epoch, for transforms whose randomness is keyed by it (``uses_epoch``).
Either way a batch is a ``BatchIndices``: an index array that also holds ``epoch`` and
``scale`` and keeps them when pickled to a worker, where ``WithBatchContext`` adds them to
the batch dict ``get_batch`` made. So a worker's transform learns its batch's epoch and
scale from the batch itself, with persistent workers too, and a resume stays exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from loadwise.errors import ConfigError
from loadwise.sampling.order import batches
from loadwise.sampling.scales import ScaleSchedule, plan


class BatchIndices(np.ndarray):
    """An int64 index array with the ``epoch`` and ``scale`` (side, or None) of its batch."""

    epoch: int | None
    scale: int | None

    def __new__(cls, indices: np.ndarray, epoch: int, scale: int | None = None) -> BatchIndices:
        out = np.asarray(indices, dtype=np.int64).view(cls)
        out.epoch, out.scale = epoch, scale
        return out

    def __array_finalize__(self, obj: Any) -> None:
        self.epoch = getattr(obj, "epoch", None)
        self.scale = getattr(obj, "scale", None)

    def __reduce__(self) -> tuple[Any, ...]:
        reduced: Any = super().__reduce__()
        return reduced[0], reduced[1], (reduced[2], self.epoch, self.scale)

    def __setstate__(self, state: Any) -> None:
        array_state, self.epoch, self.scale = state
        super().__setstate__(array_state)


class Cut(Protocol):
    """Cuts this rank's share of an epoch into batches; ``ends`` says where each stops."""

    def batches(
        self, mine: np.ndarray, epoch: int, start: int, batch_size: int, drop_last: bool
    ) -> list[np.ndarray]: ...

    def ends(
        self, share: int, epoch: int, start: int, batch_size: int, drop_last: bool
    ) -> np.ndarray: ...


class TaggedCut:
    """Fixed-size batches from ``start`` (the default cut), each tagged with its epoch."""

    def batches(
        self, mine: np.ndarray, epoch: int, start: int, batch_size: int, drop_last: bool
    ) -> list[np.ndarray]:
        return [BatchIndices(b, epoch) for b in batches(mine[start:], batch_size, drop_last)]

    def ends(
        self, share: int, epoch: int, start: int, batch_size: int, drop_last: bool
    ) -> np.ndarray:
        left = max(share - start, 0)
        count = left // batch_size if drop_last else -(-left // batch_size)
        return np.minimum(start + batch_size * np.arange(1, count + 1), share)


class ScaledCut:
    """Batches sized and scaled by ``schedule``, cut from the share's first sample, so batch
    ``k`` is the same whatever ``start`` is: a resume inside a batch gets that batch's rest."""

    def __init__(self, schedule: ScaleSchedule, seed: int) -> None:
        self.schedule, self.seed = schedule, seed

    def batches(
        self, mine: np.ndarray, epoch: int, start: int, batch_size: int, drop_last: bool
    ) -> list[np.ndarray]:
        ends, scales = self._left(len(mine), epoch, start, batch_size, drop_last)
        begins = np.concatenate([[start], ends[:-1]]).astype(np.int64)
        return [
            BatchIndices(mine[b:e], epoch, int(s))
            for b, e, s in zip(begins.tolist(), ends.tolist(), scales.tolist(), strict=True)
        ]

    def ends(
        self, share: int, epoch: int, start: int, batch_size: int, drop_last: bool
    ) -> np.ndarray:
        return self._left(share, epoch, start, batch_size, drop_last)[0]

    def _left(
        self, share: int, epoch: int, start: int, batch_size: int, drop_last: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        ends, scales = plan(self.schedule, self.seed, epoch, share, batch_size, drop_last)
        after = ends > start
        return ends[after], scales[after]


def cut_for(
    scales: ScaleSchedule | None, users: Sequence[Any], seed: int, batched: bool
) -> Cut | None:
    """The cut a loader needs: scaled for a schedule, tagged when one of ``users`` (the batch
    transform, the dataset) keys its randomness by the epoch."""
    if scales is None and not any(uses_epoch(user) for user in users):
        return None
    if not batched:
        raise ConfigError(
            "a scale schedule or an epoch-keyed batch transform needs whole-batch fetch: a "
            "dataset with `get_batch` (every loadwise dataset, MultiScaleDataset), "
            "`memory_efficient=True` and no custom sampler."
        )
    return TaggedCut() if scales is None else ScaledCut(scales, seed)


def uses_epoch(transform: Any) -> bool:
    """Whether a transform (or one inside a ``Compose``) keys its randomness by the epoch."""
    if getattr(transform, "uses_epoch", False):
        return True
    return any(uses_epoch(t) for t in getattr(transform, "transforms", ()))


class WithBatchContext:
    """``dataset`` whose ``get_batch`` adds the ``epoch`` and ``scale`` its indices carry."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def get_batch(self, indices: np.ndarray) -> Any:
        batch = self.dataset.get_batch(indices)
        epoch = getattr(indices, "epoch", None)
        if epoch is None:
            return batch
        if not isinstance(batch, dict):
            raise ConfigError(
                f"batches must be dicts to carry their epoch and scale; this dataset's "
                f"get_batch returns a {type(batch).__name__}. Use a dataset of sample dicts "
                f"(loadwise.open, MemoryEfficientDataset, MultiScaleDataset)."
            )
        scale = getattr(indices, "scale", None)
        return {**batch, "epoch": epoch, **({} if scale is None else {"scale": scale})}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: Any) -> Any:
        return self.dataset[index]

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling): never recurse
            raise AttributeError(name)
        return getattr(self.dataset, name)
