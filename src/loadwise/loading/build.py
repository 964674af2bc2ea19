"""``Loader``: a ``torch.utils.data.DataLoader`` that fetches whole batches and knows its epoch.

For datasets with ``get_batch`` the sampler yields one index array per batch and whoever
makes the batch (a worker, or this process with 0 workers) answers it with one gather per
field (``batches.py``); any other dataset gets the ordinary per-sample path with the same
seeded order. Batches can be moved to a device on the way out (``deliver.py``).
``loadwise.loader()`` (``entry.py``) builds one from arguments and a config.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Generator, Iterator
from typing import Any, NoReturn

import torch
from torch.utils.data import DataLoader, IterableDataset, Sampler

from loadwise.access.budget import eager_budget
from loadwise.errors import ConfigError, ModeError, ResumeError
from loadwise.loading.batches import BatchView, CollateThen, made_here
from loadwise.loading.bucketing import bucketed_order, check_group, with_group
from loadwise.loading.chunks import ChunkSampler, unrolled
from loadwise.loading.config import DataLoaderConfig
from loadwise.loading.cuts import WithBatchContext, cut_for
from loadwise.loading.deliver import on_device, unpacked
from loadwise.loading.faults import DeferredWorkerDeath, worker_failure
from loadwise.loading.sampler import EpochBatchSampler, ListBatches, OrderFn
from loadwise.loading.state import LoaderState, resume_point
from loadwise.loading.transport import rings_for
from loadwise.monitoring.loop import Monitor
from loadwise.monitoring.stats import EpochSummary
from loadwise.sampling.order import epoch_order
from loadwise.sampling.ranks import distributed_rank
from loadwise.torch_private import forget_iterator, live_iterator, shutdown_workers

log = logging.getLogger("loadwise")


def _ignore(*_: Any) -> None:
    """Reports nobody listens to."""


def _whole_batch(batch: Any) -> Any:
    """The batch is already collated where it was made."""
    return batch


class Loader:
    """Iterates batches epoch after epoch; each new iteration starts the next epoch.

    ``state_dict()`` / ``load_state_dict()`` save and restore the position within the
    epochs, so a restarted run yields exactly the samples not yet yielded.
    """

    def __init__(self, dataset: Any, config: DataLoaderConfig) -> None:
        self.dataset, self.config = dataset, config
        _check_memory(dataset, config.max_memory_usage)
        self.rank, self.world = distributed_rank()
        self.epoch, self._next_epoch = 0, 0
        self._start, self._position, self._running = 0, 0, False
        self._segments: tuple[Any, ...] = ()  # the resumed epoch's finished segments (elastic)
        self._iterator: weakref.ref[Generator[Any, None, None]] | None = None
        self._torch_iter: weakref.ref[Any] | None = None  # torch's iterator of this epoch
        #: With ``enable_monitoring`` or ``log_loading_stats``: wait vs step, memory, CPU.
        self.monitor = Monitor() if config.enable_monitoring or config.log_loading_stats else None
        self.sampler = self._sampler()
        self.view: BatchView  # what makes each batch (in workers, or here with 0 workers)
        self.chunks: ChunkSampler | None = None  # with worker rings: batches per item
        self.dataloader = self._dataloader()

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration run ``epoch``; its order depends only on seed and epoch."""
        self._next_epoch, self._start, self._segments = epoch, 0, ()

    @property
    def next_epoch(self) -> int:
        """The epoch the next iteration runs (after ``load_state_dict``: the resumed one)."""
        return self._next_epoch

    def __len__(self) -> int:
        return len(self.dataloader)

    def __iter__(self) -> Iterator[Any]:
        """The next epoch's batches. One iteration at a time: a second iterator while one is
        unfinished would split the batches between them and lose the position, so it is
        refused (finish or ``close()`` the first, or make a second loader)."""
        running = self._iterator() if self._iterator is not None else None
        if running is not None and getattr(running, "gi_frame", None) is not None:
            raise ConfigError(
                f"this loader is already being iterated (epoch {self.epoch} is unfinished); "
                f"a second iterator would take half its batches and corrupt `state_dict()`. "
                f"Finish or `.close()` the first iterator, or build another loader."
            )
        epoch = self._epoch()
        self._iterator = weakref.ref(epoch)
        return epoch

    def _epoch(self) -> Generator[Any, None, None]:
        """One epoch: the next one, or the rest of the one a state resumes."""
        self.epoch, self._next_epoch = self._next_epoch, self._next_epoch + 1
        self._position, self._start = self._start, 0
        if isinstance(self.sampler, EpochBatchSampler):
            self.sampler.set_epoch(self.epoch, self._position, self._segments)
        self._segments = ()
        self._running = True
        batches_iter = self._shipped(self._delivered())
        if self.monitor is not None:
            batches_iter = self.monitor.track(batches_iter, source=self)
        yield from batches_iter
        self._running = False
        if self.config.log_loading_stats and self.monitor is not None:
            _log_epoch(self.monitor.stats().epochs[-1])

    def state_dict(self) -> dict[str, Any]:
        """Where this loader is: epoch and samples of this rank's share already yielded.

        Plain numbers, for ``torch.save`` inside a training checkpoint. Taken between
        epochs it points at the start of the next one.
        """
        sampler = self._resumable()
        running = self._running and self._position < sampler.end(sampler.start)
        epoch = self.epoch if running else self._next_epoch
        position = self._position if running else self._start
        segments = sampler.segments if running else self._segments
        return with_group(self._state(epoch, position, segments).to_dict(), self._bucket_group)

    def load_state_dict(self, state: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Continue where ``state`` was taken: the next iteration yields exactly the rest.

        A different batch size, worker count or world size is fine: on another world the
        samples of the interrupted epoch that no rank yielded are shared among the new
        ranks (pass every old rank's state, or one of them when ranks stepped together, as
        under DDP). A different dataset size, seed, shuffle or ``pad_ranks`` is refused with
        ``ResumeError``. An epoch with nothing left (with ``drop_last``: less than a batch)
        counts as done.
        """
        given = state if isinstance(state, list | tuple) else [state]
        saved = [LoaderState.from_dict(s) for s in given]
        sampler = self._resumable()
        for one, raw in zip(saved, given, strict=True):
            one.check_fits(self._state(0, 0))
            check_group(raw, self._bucket_group)
        epoch, position, segments = resume_point(saved, self.rank, self.world)
        sampler.set_epoch(epoch, position, segments)
        if position >= sampler.end(position):  # nothing of that epoch is left
            self._next_epoch, self._start, self._segments = epoch + 1, 0, ()
        else:
            self._next_epoch, self._start, self._segments = epoch, position, segments
        sampler.set_epoch(self._next_epoch, self._start, self._segments)  # len(): what is left
        self._running = False

    def close(self) -> None:
        """End the running iteration and shut this loader's workers down now (persistent ones
        too); iterating again starts fresh workers at the next epoch."""
        running = self._iterator() if self._iterator is not None else None
        if running is not None:
            running.close()  # its position stays: state_dict() still says what was yielded
        self._iterator = None
        for workers in (
            self._torch_iter() if self._torch_iter else None,
            live_iterator(self.dataloader),
        ):
            if workers is not None:
                shutdown_workers(workers)
        self._torch_iter = None
        forget_iterator(self.dataloader)

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_stats(self) -> list[EpochSummary]:
        """Per-epoch timings and memory so far (empty unless monitoring is on); the whole
        picture is ``loader.monitor.stats()``."""
        return list(self.monitor.stats().epochs) if self.monitor is not None else []

    def _delivered(self) -> Iterator[Any]:
        """The DataLoader's batches, counting samples handed out; worker deaths explained,
        also while persistent workers restart for a new epoch (inside ``iter``)."""
        sampler = self.sampler if isinstance(self.sampler, EpochBatchSampler) else None
        if sampler is not None and self._is_direct():  # no workers: nothing can die
            yield from self._counted(made_here(self.view, sampler), sampler)
            return
        workers: Any = None  # torch's iterator: its workers and the tasks they hold
        iterator: Iterator[Any] | None = None
        while True:
            try:
                if iterator is None:
                    workers = iter(self.dataloader)
                    self._torch_iter = weakref.ref(workers)
                    iterator = self._counted(self._unrolled(workers), sampler)
                    DeferredWorkerDeath.install()
                if (died := DeferredWorkerDeath.take()) is not None:
                    raise died
                batch = next(iterator)
            except StopIteration:
                return
            except (RuntimeError, ConnectionError, EOFError) as exc:
                # a death inside ``iter`` (persistent workers restarting): torch kept the iterator
                workers = workers or live_iterator(self.dataloader)
                self._raise_worker_failure(exc, workers, sampler)
            yield batch

    def _raise_worker_failure(
        self, exc: BaseException, workers: Any, sampler: EpochBatchSampler | None
    ) -> NoReturn:
        """Re-raise ``exc`` as a ``WorkerError`` if it is a worker's death, after stopping the
        DataLoader's other workers (torch would keep checking the dead one at every SIGCHLD)."""
        known = sampler.current if sampler is not None else []
        numbers = self.chunks.batches_of if self.chunks is not None else None
        failure = worker_failure(exc, workers, known, self.epoch, self._position, numbers)
        if failure is None:
            raise exc
        if shutdown_workers(workers):
            forget_iterator(self.dataloader)  # the next epoch starts fresh workers
        DeferredWorkerDeath.take()  # the same death, if its signal came first: reported now
        raise failure from exc

    def _counted(self, batches: Iterator[Any], sampler: EpochBatchSampler | None) -> Iterator[Any]:
        """``batches``, keeping the position (samples of this rank's share handed out)."""
        if sampler is None:
            yield from batches
            return
        position_after = sampler.position_after()  # once an epoch
        for delivered, batch in enumerate(batches, start=1):
            self._position = position_after(delivered)
            yield batch

    def _unrolled(self, items: Iterator[Any]) -> Iterator[Any]:
        """Worker items as batches: slots opened, chunks unrolled (before they are counted)."""
        if self.view.rings is None:
            return items
        chunks = self.chunks
        return unrolled(items, chunks.observe if chunks is not None else _ignore)

    def _is_direct(self) -> bool:
        """Whole batches in this process with nothing to pin: the DataLoader would only add
        its per-batch machinery (20-30 us, a fifth of an in-RAM batch of 64 here)."""
        cfg = self.config
        return cfg.num_workers == 0 and not cfg.resolved_pin_memory and _batched(self.dataset, cfg)

    def _state(self, epoch: int, position: int, segments: tuple[Any, ...] = ()) -> LoaderState:
        cfg = self.config
        return LoaderState(
            epoch=epoch, position=position, num_samples=len(self.dataset),
            seed=cfg.generator_seed, shuffle=cfg.shuffle, rank=self.rank, world=self.world,
            pad_ranks=cfg.pad_ranks, segments=segments,
        )  # fmt: skip

    def _resumable(self) -> EpochBatchSampler:
        if not isinstance(self.sampler, EpochBatchSampler):
            raise ResumeError(
                "this loader cannot save or restore its position: it iterates a custom "
                "sampler or an IterableDataset whose order loadwise does not control. Use "
                "a loadwise dataset or a map-style dataset without `custom_sampler`."
            )
        return self.sampler

    def _sampler(self) -> Sampler[Any] | None:
        """Ours (seeded, per epoch) unless the user brought one or the dataset iterates itself."""
        cfg = self.config
        if _batched(self.dataset, cfg):
            return self._epoch_sampler()
        if isinstance(self.dataset, IterableDataset):
            return None
        return cfg.custom_batch_sampler or cfg.custom_sampler or self._epoch_sampler()

    def _epoch_sampler(self) -> EpochBatchSampler:
        cfg, n = self.config, len(self.dataset)
        order_of = getattr(self.dataset, "order", None)
        order: OrderFn
        if self._bucket_group is not None:
            order = bucketed_order(
                self.dataset, self._bucket_group, cfg.generator_seed, cfg.shuffle
            )
        elif callable(order_of):
            order = lambda e: order_of(e, cfg.generator_seed, cfg.shuffle)  # noqa: E731
        else:
            order = lambda e: epoch_order(n, cfg.generator_seed, e, cfg.shuffle)  # noqa: E731
        users = (cfg.batch_transform, self.dataset)  # epoch-keyed randomness, if any
        cut = cut_for(cfg.scales, users, cfg.generator_seed, _batched(self.dataset, cfg))
        sampler = EpochBatchSampler(
            order, n, cfg.batch_size, cfg.drop_last, self.rank, self.world, cfg.pad_ranks, cut
        )
        sampler.read_ahead = getattr(self.dataset, "read_ahead", None)  # remote: fetch ahead
        return sampler

    @property
    def _bucket_group(self) -> int | None:
        """Samples per length bucket (a batch for every rank), or None without bucketing."""
        return self.config.batch_size * self.world if self.config.bucket_by_length else None

    def _dataloader(self) -> DataLoader[Any]:
        cfg = self.config
        common: dict[str, Any] = {
            "num_workers": cfg.num_workers,
            "pin_memory": cfg.resolved_pin_memory,
            "pin_memory_device": cfg.pin_memory_device,
            "persistent_workers": cfg.resolved_persistent_workers,
            "prefetch_factor": cfg.prefetch_factor if cfg.num_workers > 0 else None,
            "generator": torch.Generator().manual_seed(cfg.generator_seed),
            "timeout": cfg.timeout if cfg.num_workers > 0 else 0,
        }
        # the batch transform runs where the batch is made, unless it runs on the device
        transform = cfg.batch_transform if cfg.device is None else None
        timed = self.monitor is not None
        tagged = isinstance(self.sampler, EpochBatchSampler) and self.sampler.cut is not None
        fetched = WithBatchContext(self.dataset) if tagged else self.dataset  # epoch, scale
        self.view = BatchView(fetched, cfg.collate_fn, transform, timed)
        if _batched(self.dataset, cfg):
            self.view.rings = rings_for(cfg.num_workers, cfg.prefetch_factor, common["pin_memory"])
            sampler: Any = self.sampler
            if self.view.rings is not None and isinstance(sampler, EpochBatchSampler):
                sampler = self.chunks = ChunkSampler(sampler)  # consecutive batches per item
            return DataLoader(self.view, batch_size=None, sampler=sampler,
                              collate_fn=_whole_batch, **common)  # fmt: skip
        collate = cfg.collate_fn
        if transform is not None or timed:
            collate = CollateThen(cfg.collate_fn, transform, timed)
        if isinstance(self.dataset, IterableDataset) or cfg.custom_sampler is not None:
            return DataLoader(
                self.dataset, batch_size=cfg.batch_size, sampler=self.sampler,
                drop_last=cfg.drop_last, collate_fn=collate, **common,
            )  # fmt: skip
        batch_sampler = self.sampler
        if isinstance(batch_sampler, EpochBatchSampler):
            batch_sampler = ListBatches(batch_sampler)
        return DataLoader(self.dataset, batch_sampler=batch_sampler,
                          collate_fn=collate, **common)  # fmt: skip

    def _shipped(self, items: Iterator[Any]) -> Iterator[Any]:
        """Batches as users get them: stage times taken off (monitored), on the device."""
        cfg, monitor = self.config, self.monitor
        add = monitor.stages.add if monitor is not None else None
        batches = unpacked(items, add) if add is not None else items
        if cfg.device is None:
            return batches
        device = torch.device(cfg.device)
        return on_device(batches, device, cfg.non_blocking, cfg.batch_transform, add)


def _log_epoch(epoch: EpochSummary) -> None:
    log.info(
        "epoch %d: %d batches, %d samples in %.2f s (%.0f samples/s, %.0f%% waiting for data)",
        epoch.epoch, epoch.batches, epoch.samples, epoch.seconds, epoch.samples_per_second,
        100 * epoch.data_wait_fraction,
    )  # fmt: skip


def _check_memory(dataset: Any, max_memory_usage: float | None) -> None:
    """``max_memory_usage``: refuse eager data beyond that share of the memory it found."""
    held = getattr(dataset, "memory_bytes", None)
    if max_memory_usage is None or held is None:
        return
    fits, figures = eager_budget(held, max_memory_usage, already_held=held)
    if not fits:
        raise ModeError(
            f"the eager dataset exceeds `max_memory_usage`: {figures}. Open it with "
            f"mode='lazy' (or 'auto' with the same max_memory_usage) instead."
        )


def _batched(dataset: Any, cfg: DataLoaderConfig) -> bool:
    """Whole-batch fetch: a dataset with ``get_batch`` and no custom sampler (a custom
    collate gets the samples of one ``__getitems__`` call)."""
    return (
        cfg.memory_efficient
        and callable(getattr(dataset, "get_batch", None))
        and cfg.custom_sampler is None
        and cfg.custom_batch_sampler is None
    )
