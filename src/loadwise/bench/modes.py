"""``bench_modes``: a packed dataset measured in each mode and worker count (``loadwise bench``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from loadwise.access.auto import open_dataset
from loadwise.errors import ConfigError
from loadwise.loading.config import DataLoaderConfig
from loadwise.monitoring.measure import Measurement, measure

MODES = ("eager", "lazy", "cached", "streaming")


def bench_modes(
    path: str | Path,
    *,
    modes: Sequence[str] = MODES,
    workers: Sequence[int] = (0, 2),
    batch_size: int = 64,
    epochs: int = 2,
    max_seconds: float | None = None,
) -> list[Measurement]:
    """Measure ``loadwise.loader`` over ``path`` for every mode x worker count, one at a time.

    ``prepare_seconds`` is the time to open (eager loads everything then); the dataset is
    closed before the next one opens, so memory figures do not add up across runs.
    """
    from loadwise.loading.entry import loader

    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ConfigError(f"unknown mode(s) {unknown}; choose from {', '.join(MODES)}.")
    results = []
    for mode in modes:
        for count in workers:
            started = time.perf_counter()
            dataset = open_dataset(path, mode)
            opened = time.perf_counter() - started
            config = DataLoaderConfig(batch_size=batch_size, num_workers=count)
            try:
                run = loader(dataset, config=config)
                result = measure(f"{mode} w{count}", run, epochs=epochs, max_seconds=max_seconds,
                                 prepare_seconds=opened,
                                 disk_bytes=dataset.manifest.num_bytes)  # fmt: skip
                del run
            finally:
                dataset.close()
            result.extra.update(mode=mode, workers=count)
            results.append(result)
    return results
