"""``loader()``: a ``Loader`` from a few arguments over a config, or a measured config."""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from typing import Any, Literal

from loadwise.errors import ConfigError
from loadwise.loading.autotune import tuned_config
from loadwise.loading.build import Loader
from loadwise.loading.config import DataLoaderConfig


def loader(
    dataset: Any,
    batch_size: int | None = None,
    *,
    shuffle: bool | None = None,
    seed: int | None = None,
    num_workers: int | None = None,
    drop_last: bool | None = None,
    device: str | None = None,
    batch_transform: Callable[[Any], Any] | None = None,
    config: DataLoaderConfig | Literal["auto"] | None = None,
) -> Loader:
    """Batches of ``dataset`` in a seeded order; arguments given override ``config``.

    ``seed`` is ``config.generator_seed``; everything else ``DataLoaderConfig`` holds
    (pinning, prefetch, custom samplers and collate, monitoring) is set through ``config``.
    ``batch_transform`` (``batch -> batch``, e.g. ``loadwise.transforms.Normalize()``) runs
    once per batch, never per sample: where the batch is gathered (in the DataLoader worker
    with ``num_workers > 0``, in this process with 0), or, when ``device`` is given, after
    the batch was moved there (so it runs on the GPU).
    ``config="auto"`` measures candidate settings (workers, prefetch, batched fetch) on this
    dataset for a few seconds and uses the fastest: what ``loadwise tune`` prints, cached per
    dataset, batch size and machine, so later runs start at once.
    """
    if isinstance(dataset, str | PathLike):
        raise ConfigError(
            f"`loader` takes a dataset, not a path ({dataset!r}): pass "
            f"`loadwise.open({str(dataset)!r})` (after `loadwise.pack`), or any torch Dataset."
        )
    given = {
        "batch_size": batch_size, "shuffle": shuffle, "generator_seed": seed,
        "num_workers": num_workers, "drop_last": drop_last, "device": device,
        "batch_transform": batch_transform,
    }  # fmt: skip
    if config == "auto":
        base = tuned_config(dataset, batch_size or DataLoaderConfig.batch_size)
    elif isinstance(config, str):
        raise ConfigError(f"`config` is a DataLoaderConfig, None or 'auto'. Found: {config!r}.")
    else:
        base = config or DataLoaderConfig()
    return Loader(dataset, base.with_options(**{k: v for k, v in given.items() if v is not None}))
