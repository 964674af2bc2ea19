"""The order of a loader's batches: one index array per batch, from ``sampling/``'s pure order.

``EpochBatchSampler`` cuts this rank's share of an epoch's order into batches, starting
anywhere (a resume); ``ListBatches`` gives them as the lists of ints a per-sample
``DataLoader`` expects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
from torch.utils.data import Sampler

from loadwise.loading.cuts import Cut
from loadwise.sampling.elastic import Segment, elastic_share
from loadwise.sampling.order import batches, partition

OrderFn = Callable[[int], np.ndarray]


class EpochBatchSampler(Sampler[np.ndarray]):
    """Index batches of one epoch: ``order(epoch)``, this rank's share, cut into batches.

    ``set_epoch(epoch, start)`` skips the first ``start`` samples of the share (a resume);
    with ``segments`` (an elastic resume) the share is of what they left of the epoch. The
    batches of the running epoch are kept in ``current`` to name them in errors;
    ``read_ahead`` (if set) sees them first and yields them as they are handed out.
    A ``cut`` (``cuts.py``) replaces the fixed-size cut: batches sized and scaled by a scale
    schedule, or tagged with their epoch.
    """

    def __init__(
        self,
        order: OrderFn,
        num_samples: int,
        batch_size: int,
        drop_last: bool,
        rank: int = 0,
        world: int = 1,
        pad_ranks: bool = True,
        cut: Cut | None = None,
    ) -> None:
        self._order, self.num_samples, self.cut = order, num_samples, cut
        self.batch_size, self.drop_last = batch_size, drop_last
        self.rank, self.world, self.pad_ranks = rank, world, pad_ranks
        self.epoch, self.start = 0, 0
        self.segments: tuple[Segment, ...] = ()
        self._resumed_share: int | None = None
        self.current: list[np.ndarray] = []
        self.read_ahead: Callable[[list[np.ndarray]], Iterator[np.ndarray]] | None = None

    def set_epoch(self, epoch: int, start: int = 0, segments: tuple[Segment, ...] = ()) -> None:
        self.epoch, self.start = epoch, start
        self.segments, self._resumed_share = tuple(segments), None

    @property
    def share(self) -> int:
        """Samples in this rank's share of an epoch (equal on every rank)."""
        if self.segments:
            if self._resumed_share is None:
                self._resumed_share = len(self._mine())
            return self._resumed_share
        if self.pad_ranks:
            return math.ceil(self.num_samples / self.world)
        return self.num_samples // self.world

    def end(self, start: int) -> int:
        """The position (samples of the share) this epoch's last batch reaches, starting at
        ``start``: the whole share, or with ``drop_last`` the last full batch's end."""
        if self.cut is not None:
            ends = self._cut_ends(start)
            return int(ends[-1]) if len(ends) else start
        if not self.drop_last:
            return self.share
        return start + max(self.share - start, 0) // self.batch_size * self.batch_size

    def position_after(self) -> Callable[[int], int]:
        """For the running epoch: the position (samples of the share) after ``k`` batches."""
        start, size, share = self.start, self.batch_size, self.share
        if self.cut is None:
            return lambda k: min(start + k * size, share)
        ends = self._cut_ends(start)
        return lambda k: int(ends[k - 1]) if k else start

    def _cut_ends(self, start: int) -> np.ndarray:
        assert self.cut is not None
        return self.cut.ends(self.share, self.epoch, start, self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[np.ndarray]:
        mine = self._mine()
        if self.cut is None:
            self.current = batches(mine[self.start :], self.batch_size, self.drop_last)
        else:
            self.current = self.cut.batches(
                mine, self.epoch, self.start, self.batch_size, self.drop_last
            )
        yield from self.current if self.read_ahead is None else self.read_ahead(self.current)

    def _mine(self) -> np.ndarray:
        """This rank's share of the epoch (of what earlier segments left, when resumed)."""
        order, drop = self._order(self.epoch), not self.pad_ranks
        if self.segments:
            return elastic_share(order, self.segments, self.rank, self.world, drop=drop)
        return partition(order, self.rank, self.world, drop_last=drop)

    def __len__(self) -> int:
        if self.cut is not None:
            return len(self._cut_ends(self.start))
        n = max(self.share - self.start, 0)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


class ListBatches(Sampler[list[int]]):
    """Our index-array batches as the lists of ints a per-sample DataLoader expects."""

    def __init__(self, inner: EpochBatchSampler) -> None:
        self.inner = inner

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.inner:
            yield batch.tolist()

    def __len__(self) -> int:
        return len(self.inner)
