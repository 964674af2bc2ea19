"""``EfficientDataLoader`` and ``DataLoaderFactory``: the documents' loader names over ``loader``.

Both build a ``loadwise.loading.Loader``; datasets with ``get_batch`` are fetched a whole
batch at a time, any other torch dataset through the ordinary per-sample path.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from loadwise.loading import DataLoaderConfig, Loader, loader
from loadwise.monitoring.stats import MonitorStats


class EfficientDataLoader:
    """Batches of ``dataset`` as ``config`` says; each new iteration is the next epoch."""

    def __init__(self, dataset: Any, config: DataLoaderConfig | None = None) -> None:
        self.dataset = dataset
        self.config = config or DataLoaderConfig()
        self.loader: Loader = loader(dataset, config=self.config)
        self._clock = _Clock()

    @property
    def dataloader(self) -> Any:
        """The ``torch.utils.data.DataLoader`` underneath."""
        return self.loader.dataloader

    def __iter__(self) -> Iterator[Any]:
        return self._clock.timed(iter(self.loader))

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration run ``epoch`` (its order depends on seed and epoch only)."""
        self.loader.set_epoch(epoch)

    def state_dict(self) -> dict[str, Any]:
        """Where this loader is, as plain numbers for a checkpoint (``Loader.state_dict``)."""
        return self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where ``state`` was taken (``Loader.load_state_dict``)."""
        self.loader.load_state_dict(state)

    def get_stats(self) -> dict[str, Any]:
        """Settings plus per-epoch timings (kept with ``enable_monitoring`` or
        ``log_loading_stats``); ``samples_per_second`` is the last epoch's, else None.
        The documents' keys are always there: ``total_time``, ``avg_batch_time`` and
        ``batches_per_second`` are always measured (a clock read per iteration);
        ``avg_memory_usage``, ``avg_cpu_usage`` (percents of the system),
        ``data_wait_fraction``, ``peak_pss`` and ``diagnosis`` need ``enable_monitoring=True``
        and are None without it (``note`` says so).
        """
        epochs = [
            {**asdict(s), "samples_per_second": s.samples_per_second}
            for s in self.loader.get_stats()
        ]
        stats = {
            "batch_size": self.config.batch_size,
            "num_workers": self.config.num_workers,
            "pin_memory": self.config.resolved_pin_memory,
            "num_batches": len(self),
            "num_samples": len(self.dataset) if hasattr(self.dataset, "__len__") else None,
            "epochs": epochs,
            "samples_per_second": epochs[-1]["samples_per_second"] if epochs else None,
        }
        monitor = self.loader.monitor
        if self.config.enable_monitoring and monitor is not None and monitor.clock.records:
            return stats | _performance(monitor.stats())
        return stats | self._clock.stats() | dict.fromkeys(_MONITORED) | {"note": _NOTE}


_MONITORED = ("avg_memory_usage", "avg_cpu_usage", "data_wait_fraction", "peak_pss", "diagnosis")
_NOTE = f"{', '.join(_MONITORED)} are measured with DataLoaderConfig(enable_monitoring=True)"


class _Clock:
    """Batches and seconds of every iteration so far: what ``get_stats`` can always say."""

    def __init__(self) -> None:
        self.batches, self.seconds = 0, 0.0

    def timed(self, batches: Iterator[Any]) -> Iterator[Any]:
        started = time.perf_counter()
        try:
            for batch in batches:
                self.batches += 1
                yield batch
        finally:
            self.seconds += time.perf_counter() - started

    def stats(self) -> dict[str, Any]:
        done = self.batches and self.seconds > 0
        return {
            "total_time": self.seconds,
            "avg_batch_time": self.seconds / self.batches if done else None,
            "batches_per_second": self.batches / self.seconds if done else None,
        }


def _performance(stats: MonitorStats) -> dict[str, Any]:
    """The documents' performance keys (``batches_per_second``, ``avg_memory_usage`` in %
    of system memory, ``avg_cpu_usage`` in % of all cores) plus the monitor's findings.
    """
    memory = stats.timeline.memory
    return {
        "total_time": stats.seconds,
        "avg_batch_time": stats.seconds / stats.batches,
        "batches_per_second": stats.batches / stats.seconds if stats.seconds > 0 else 0.0,
        "avg_memory_usage": _mean([s.system_memory_percent for s in memory]),
        "avg_cpu_usage": _mean([s.system_cpu_percent for s in memory[1:]]),
        "data_wait_fraction": stats.data_wait_fraction,
        "peak_pss": stats.peak_pss,
        "diagnosis": stats.diagnosis,
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


class DataLoaderFactory:
    """Builds ``EfficientDataLoader``\\ s from a config plus option overrides."""

    @staticmethod
    def create_dataloader(
        dataset: Any, config: DataLoaderConfig | None = None, **options: Any
    ) -> EfficientDataLoader:
        """A loader over ``dataset``; ``options`` are ``DataLoaderConfig`` fields to override.

        Unknown option names raise ``ConfigError`` listing the valid ones.
        """
        return EfficientDataLoader(dataset, (config or DataLoaderConfig()).with_options(**options))

    @staticmethod
    def create_text_dataloader(
        data_path: Any,
        config: DataLoaderConfig | None = None,
        max_length: int = 512,
        **options: Any,
    ) -> EfficientDataLoader:
        """Batches of a ``TextDataset`` (packed once, tokens padded to each batch's longest);
        ``tokenizer=`` and the other ``TextDataset`` keywords pass through ``options``.
        ``config.bucket_by_length`` groups similar lengths; ``max_memory_usage`` picks the mode."""
        from loadwise.compat.collate import CustomCollateFn
        from loadwise.compat.text import TextDataset

        config = config or DataLoaderConfig()
        dataset = TextDataset(data_path, max_length=max_length, pad_to="longest",
                              max_memory_usage=config.max_memory_usage, **options)  # fmt: skip
        if not config.memory_efficient and config.collate_fn is None:  # items differ in length
            config = config.with_options(collate_fn=CustomCollateFn.text_collate)
        return EfficientDataLoader(dataset, config)

    @staticmethod
    def create_hdf5_dataloader(
        path: Any,
        config: DataLoaderConfig | None = None,
        dataset_name: str = "images",
        **options: Any,
    ) -> EfficientDataLoader:
        """Batches ``(images, labels)`` of an ``HDF5Dataset``; ``loading_mode`` and the other
        ``HDF5Dataset`` keywords pass through ``options`` (``auto`` within ``max_memory_usage``)."""
        from loadwise.compat.hdf5 import HDF5Dataset

        config = config or DataLoaderConfig()
        options.setdefault("max_memory_usage", config.max_memory_usage)
        return EfficientDataLoader(HDF5Dataset(path, dataset_name=dataset_name, **options), config)
