"""``loader``: a ``torch.utils.data.DataLoader`` that fetches whole batches and knows its epoch.

For packed datasets the sampler yields one index array per batch and each worker answers
it with ``get_batch`` (one gather per field); any other dataset gets the ordinary per-sample
path with the same seeded order. Batches can be moved to a device on the way out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Any, Literal, NoReturn

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from loadwise.access.budget import eager_budget
from loadwise.errors import ConfigError, ModeError, ResumeError
from loadwise.loading.autotune import tuned_config
from loadwise.loading.config import DataLoaderConfig
from loadwise.loading.faults import DeferredWorkerDeath, worker_failure
from loadwise.loading.state import LoaderState
from loadwise.monitoring.loop import Monitor
from loadwise.monitoring.stats import EpochSummary
from loadwise.sampling.order import batches, epoch_order, partition
from loadwise.sampling.ranks import distributed_rank

log = logging.getLogger("loadwise")

OrderFn = Callable[[int], np.ndarray]


class EpochBatchSampler(Sampler[np.ndarray]):
    """Index batches of one epoch: ``order(epoch)``, this rank's share, cut into batches.

    ``set_epoch(epoch, start)`` skips the first ``start`` samples of the share (a resume);
    the batches of the running epoch are kept in ``current`` to name them in errors.
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
    ) -> None:
        self._order, self.num_samples = order, num_samples
        self.batch_size, self.drop_last = batch_size, drop_last
        self.rank, self.world, self.pad_ranks = rank, world, pad_ranks
        self.epoch, self.start = 0, 0
        self.current: list[np.ndarray] = []

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    @property
    def share(self) -> int:
        """Samples in this rank's share of an epoch (equal on every rank)."""
        if self.pad_ranks:
            return math.ceil(self.num_samples / self.world)
        return self.num_samples // self.world

    def __iter__(self) -> Iterator[np.ndarray]:
        order = self._order(self.epoch)
        mine = partition(order, self.rank, self.world, drop_last=not self.pad_ranks)
        self.current = batches(mine[self.start :], self.batch_size, self.drop_last)
        yield from self.current

    def __len__(self) -> int:
        n = max(self.share - self.start, 0)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


class _BatchesOf(Dataset):
    """Map-style view whose items are whole batches: ``view[indices] = get_batch(indices)``."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __getitem__(self, indices: np.ndarray) -> Any:
        return self.dataset.get_batch(indices)

    def __len__(self) -> int:
        return len(self.dataset)


def _whole_batch(batch: Any) -> Any:
    """The batch is already collated by ``get_batch``."""
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
        #: With ``enable_monitoring`` or ``log_loading_stats``: wait vs step, memory, CPU.
        self.monitor = Monitor() if config.enable_monitoring or config.log_loading_stats else None
        self.sampler = self._sampler()
        self.dataloader = self._dataloader()

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration run ``epoch``; its order depends only on seed and epoch."""
        self._next_epoch, self._start = epoch, 0

    @property
    def next_epoch(self) -> int:
        """The epoch the next iteration runs (after ``load_state_dict``: the resumed one)."""
        return self._next_epoch

    def __len__(self) -> int:
        return len(self.dataloader)

    def __iter__(self) -> Iterator[Any]:
        self.epoch, self._next_epoch = self._next_epoch, self._next_epoch + 1
        self._position, self._start = self._start, 0
        if isinstance(self.sampler, EpochBatchSampler):
            self.sampler.set_epoch(self.epoch, self._position)
        self._running = True
        batches_iter = self._delivered()
        if self.config.device is not None:
            batches_iter = (self._to_device(b) for b in batches_iter)
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
        running = self._running and self._position < sampler.share
        epoch = self.epoch if running else self._next_epoch
        position = self._position if running else self._start
        return self._state(epoch, position).to_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue where ``state`` was taken: the next iteration yields exactly the rest.

        A different batch size or worker count is fine; a different dataset size, seed,
        shuffle, rank or world size is refused with ``ResumeError``.
        """
        saved = LoaderState.from_dict(state)
        sampler = self._resumable()
        saved.check_fits(self._state(0, 0))
        if saved.position >= sampler.share:
            self._next_epoch, self._start = saved.epoch + 1, 0
        else:
            self._next_epoch, self._start = saved.epoch, saved.position
        sampler.set_epoch(self._next_epoch, self._start)  # so len() counts what is left
        self._running = False

    def get_stats(self) -> list[EpochSummary]:
        """Per-epoch timings and memory so far (empty unless monitoring is on); the whole
        picture is ``loader.monitor.stats()``."""
        return list(self.monitor.stats().epochs) if self.monitor is not None else []

    def _delivered(self) -> Iterator[Any]:
        """The DataLoader's batches, counting samples handed out; worker deaths explained,
        also while persistent workers restart for a new epoch (inside ``iter``)."""
        sampler = self.sampler if isinstance(self.sampler, EpochBatchSampler) else None
        if sampler is not None and self._is_direct():  # no workers: nothing can die
            yield from self._counted(_direct(self.dataset, sampler), sampler)
            return
        workers: Any = None  # torch's iterator: its workers and the tasks they hold
        iterator: Iterator[Any] | None = None
        while True:
            try:
                if iterator is None:
                    workers = iter(self.dataloader)
                    iterator = self._counted(workers, sampler)
                    DeferredWorkerDeath.install()
                if (died := DeferredWorkerDeath.take()) is not None:
                    raise died
                batch = next(iterator)
            except StopIteration:
                return
            except (RuntimeError, ConnectionError, EOFError) as exc:
                # a death inside ``iter`` (persistent workers restarting): torch kept the iterator
                workers = workers or getattr(self.dataloader, "_iterator", None)
                self._raise_worker_failure(exc, workers, sampler)
            yield batch

    def _raise_worker_failure(
        self, exc: BaseException, workers: Any, sampler: EpochBatchSampler | None
    ) -> NoReturn:
        """Re-raise ``exc`` as a ``WorkerError`` if it is a worker's death, after stopping the
        DataLoader's other workers (torch would keep checking the dead one at every SIGCHLD)."""
        known = sampler.current if sampler is not None else []
        failure = worker_failure(exc, workers, known, self.epoch, self._position)
        if failure is None:
            raise exc
        shutdown = getattr(workers, "_shutdown_workers", None)
        if callable(shutdown):
            shutdown()
            self.dataloader._iterator = None  # the next epoch starts fresh workers
        DeferredWorkerDeath.take()  # the same death, if its signal came first: reported now
        raise failure from exc

    def _counted(self, batches: Iterator[Any], sampler: EpochBatchSampler | None) -> Iterator[Any]:
        """``batches``, keeping the position (samples of this rank's share handed out)."""
        if sampler is None:
            yield from batches
            return
        start, size, share = sampler.start, sampler.batch_size, sampler.share  # once an epoch
        for delivered, batch in enumerate(batches, start=1):
            self._position = min(start + delivered * size, share)
            yield batch

    def _is_direct(self) -> bool:
        """Whole batches in this process with nothing to pin: the DataLoader would only add
        its per-batch machinery (20-30 us, a fifth of an in-RAM batch of 64 here)."""
        cfg = self.config
        return cfg.num_workers == 0 and not cfg.resolved_pin_memory and _batched(self.dataset, cfg)

    def _state(self, epoch: int, position: int) -> LoaderState:
        cfg = self.config
        return LoaderState(
            epoch=epoch, position=position, num_samples=len(self.dataset),
            seed=cfg.generator_seed, shuffle=cfg.shuffle, rank=self.rank, world=self.world,
            pad_ranks=cfg.pad_ranks,
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
        if callable(order_of):
            order: OrderFn = lambda e: order_of(e, cfg.generator_seed, cfg.shuffle)  # noqa: E731
        else:
            order = lambda e: epoch_order(n, cfg.generator_seed, e, cfg.shuffle)  # noqa: E731
        return EpochBatchSampler(
            order, n, cfg.batch_size, cfg.drop_last, self.rank, self.world, cfg.pad_ranks
        )

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
        if _batched(self.dataset, cfg):
            view = _BatchesOf(self.dataset)
            return DataLoader(view, batch_size=None, sampler=self.sampler,
                              collate_fn=_whole_batch, **common)  # fmt: skip
        if isinstance(self.dataset, IterableDataset) or cfg.custom_sampler is not None:
            return DataLoader(
                self.dataset, batch_size=cfg.batch_size, sampler=self.sampler,
                drop_last=cfg.drop_last, collate_fn=cfg.collate_fn, **common,
            )  # fmt: skip
        batch_sampler = self.sampler
        if isinstance(batch_sampler, EpochBatchSampler):
            batch_sampler = _ListBatches(batch_sampler)
        return DataLoader(self.dataset, batch_sampler=batch_sampler,
                          collate_fn=cfg.collate_fn, **common)  # fmt: skip

    def _to_device(self, batch: Any) -> Any:
        if self.config.device is None:
            return batch
        return _move(batch, torch.device(self.config.device), self.config.non_blocking)


def _direct(dataset: Any, sampler: EpochBatchSampler) -> Iterator[Any]:
    """``get_batch`` of each index batch, in this process."""
    get_batch = dataset.get_batch
    for indices in sampler:
        yield get_batch(indices)


class _ListBatches(Sampler[list[int]]):
    """Our index-array batches as the lists of ints a per-sample DataLoader expects."""

    def __init__(self, inner: EpochBatchSampler) -> None:
        self.inner = inner

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.inner:
            yield batch.tolist()

    def __len__(self) -> int:
        return len(self.inner)


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
    """Whole-batch fetch: a dataset with ``get_batch``, no custom collate or sampler."""
    return (
        cfg.memory_efficient
        and callable(getattr(dataset, "get_batch", None))
        and cfg.collate_fn is None
        and cfg.custom_sampler is None
        and cfg.custom_batch_sampler is None
    )


def _move(value: Any, device: torch.device, non_blocking: bool) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, dict):
        return {k: _move(v, device, non_blocking) for k, v in value.items()}
    if isinstance(value, list | tuple) and value and isinstance(value[0], torch.Tensor):
        return type(value)(_move(v, device, non_blocking) for v in value)
    return value


def _batch_len(batch: Any) -> int:
    if isinstance(batch, dict):
        batch = next(iter(batch.values()), [])
    if isinstance(batch, list | tuple) and batch and isinstance(batch[0], torch.Tensor):
        batch = batch[0]
    return len(batch) if hasattr(batch, "__len__") else 1


def loader(
    dataset: Any,
    batch_size: int | None = None,
    *,
    shuffle: bool | None = None,
    seed: int | None = None,
    num_workers: int | None = None,
    drop_last: bool | None = None,
    device: str | None = None,
    config: DataLoaderConfig | Literal["auto"] | None = None,
) -> Loader:
    """Batches of ``dataset`` in a seeded order; arguments given override ``config``.

    ``seed`` is ``config.generator_seed``; everything else ``DataLoaderConfig`` holds
    (pinning, prefetch, custom samplers, monitoring) is set through ``config``.
    ``config="auto"`` measures candidate settings (workers, prefetch, batched fetch) on this
    dataset for a few seconds and uses the fastest: what ``loadwise tune`` prints, cached per
    dataset, batch size and machine, so later runs start at once.
    """
    given = {
        "batch_size": batch_size, "shuffle": shuffle, "generator_seed": seed,
        "num_workers": num_workers, "drop_last": drop_last, "device": device,
    }  # fmt: skip
    if config == "auto":
        base = tuned_config(dataset, batch_size or DataLoaderConfig.batch_size)
    elif isinstance(config, str):
        raise ConfigError(f"`config` is a DataLoaderConfig, None or 'auto'. Found: {config!r}.")
    else:
        base = config or DataLoaderConfig()
    return Loader(dataset, base.with_options(**{k: v for k, v in given.items() if v is not None}))
