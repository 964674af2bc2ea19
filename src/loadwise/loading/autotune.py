"""Pick DataLoader settings by measuring them: ``tune`` ranks, ``tuned_config`` caches.

Each candidate (worker count 0..cores, prefetch factor, pinning where CUDA exists, whole-batch
vs per-sample fetch) runs two short epochs of ``loadwise.loader`` on the dataset itself; the
second epoch's samples/s ranks it (the first pays for starting workers); a cached dataset's
cache is filled first, so every candidate meets the same warm cache. The winner is kept
as JSON in ``$LOADWISE_CACHE/tune/`` (default ``~/.cache/loadwise/tune/``) under a key made
of the manifest's checksum, the machine's fingerprint, the mode and the batch size, so
``loader(..., config="auto")`` measures once per dataset and machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from loadwise._version import __version__
from loadwise.cache_dir import cache_dir
from loadwise.errors import ConfigError
from loadwise.loading.build import Loader
from loadwise.loading.config import DataLoaderConfig
from loadwise.monitoring.measure import measure

log = logging.getLogger("loadwise")

#: The options a tune decides; everything else comes from the base config.
TUNED = ("num_workers", "prefetch_factor", "pin_memory", "memory_efficient")


@dataclass(frozen=True)
class TuneResult:
    """One candidate's options and its steady samples/s (second short epoch)."""

    options: dict[str, Any]
    samples_per_second: float
    first_batch_seconds: float

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.options.items())


def candidates(cores: int | None = None, cuda: bool | None = None) -> list[dict[str, Any]]:
    """Worker counts 0..cores, prefetch 2 or 4, pinning if CUDA, batched vs per-sample."""
    cores = cores or os.cpu_count() or 1
    cuda = torch.cuda.is_available() if cuda is None else cuda
    out: list[dict[str, Any]] = []
    for workers in range(cores + 1):
        for prefetch in [None] if workers == 0 else [2, 4]:
            for pin in [False, True] if cuda else [False]:
                out.append(_opts(workers, prefetch, pin, True))
    out.append(_opts(cores, 2 if cores else None, False, False))  # the per-sample path
    return out


def _opts(workers: int, prefetch: int | None, pin: bool, batched: bool) -> dict[str, Any]:
    return {"num_workers": workers, "prefetch_factor": prefetch,
            "pin_memory": pin, "memory_efficient": batched}  # fmt: skip


def tune(
    dataset: Any,
    *,
    batch_size: int = 64,
    seconds: float = 2.0,
    candidates: list[dict[str, Any]] | None = None,
    base: DataLoaderConfig | None = None,
) -> list[TuneResult]:
    """Measure each candidate for about ``seconds``; results ranked fastest first."""
    if not seconds > 0:
        raise ConfigError(f"`seconds` must be positive. Found: {seconds!r}.")
    base = (base or DataLoaderConfig()).with_options(batch_size=batch_size)
    warm_cache(dataset, batch_size)
    results = []
    for options in candidates if candidates is not None else globals()["candidates"]():
        config = base.with_options(**options)
        run = Loader(dataset, config)
        m = measure("tune", run, epochs=2, max_seconds=seconds / 2, memory=False)
        results.append(TuneResult(dict(options), m.rates[-1], m.first_batch_seconds))
        log.info("tune: %s -> %.0f samples/s", results[-1].describe(), m.rates[-1])
        del run
    return sorted(results, key=lambda r: -r.samples_per_second)


def warm_cache(dataset: Any, batch_size: int) -> int:
    """Fill a cached dataset's shared cache before candidates are measured; returns samples
    read. Measured one after another, later candidates used to meet a warmer cache, so
    cached mode was ranked by luck (7k vs 62-82k/s for the same data, NOTES.md); now every
    candidate meets the state a training run has from its second epoch on. The samples
    read stay cached, so the run itself starts warm."""
    cache = getattr(dataset, "cache", None)
    if cache is None or not getattr(dataset, "decodes", False) or not cache.limit:
        return 0
    read = 0
    for start in range(0, len(dataset), batch_size):
        if cache.bytes >= cache.limit or len(cache) >= len(dataset) * len(dataset.images):
            break  # full, or everything held: nothing a candidate does changes it now
        held = cache.bytes
        dataset.get_batch(range(start, min(start + batch_size, len(dataset))))
        read += min(batch_size, len(dataset) - start)
        if cache.bytes == held:
            break  # no room for these images: the cache is as full as it gets
    return read


def tuned_config(
    dataset: Any,
    batch_size: int,
    base: DataLoaderConfig | None = None,
    *,
    seconds: float = 2.0,
    refresh: bool = False,
    candidates: list[dict[str, Any]] | None = None,
) -> DataLoaderConfig:
    """``base`` with the measured best options for ``dataset``; cached for packed datasets.

    ``refresh`` measures again even if a cached answer exists; ``candidates`` as in ``tune``.
    """
    base = (base or DataLoaderConfig()).with_options(batch_size=batch_size)
    path = cache_path(dataset, batch_size)
    if path is not None and not refresh and (found := _read(path)) is not None:
        return base.with_options(**found)
    best = tune(dataset, batch_size=batch_size, seconds=seconds, candidates=candidates, base=base)[
        0
    ]
    if path is not None:
        save_result(path, best)
    return base.with_options(**best.options)


def cache_path(dataset: Any, batch_size: int) -> Path | None:
    """Where a packed dataset's tune result lives; None for datasets without a manifest."""
    root = getattr(dataset, "root", None)
    manifest = Path(root) / "manifest.json" if root is not None else None
    if manifest is None or not manifest.is_file():
        return None
    digest = hashlib.sha256(manifest.read_bytes())
    mode = getattr(dataset, "mode", "?")
    fields_ = ",".join(f.name for f in getattr(dataset, "fields", ()))
    digest.update(f"{machine_fingerprint()}|{mode}|{fields_}|{batch_size}".encode())
    return cache_dir("tune", f"{digest.hexdigest()[:32]}.json")


def machine_fingerprint() -> str:
    """CPU model and count, memory, CUDA, torch and loadwise versions: what changes the answer."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 0
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    parts = [platform.machine(), platform.processor(), os.cpu_count(), affinity, memory,
             torch.cuda.is_available(), torch.__version__, __version__]  # fmt: skip
    return "|".join(map(str, parts))


def _read(path: Path) -> dict[str, Any] | None:
    """The cached options, or None if missing or unreadable (then we measure again)."""
    try:
        data = json.loads(path.read_text())
        options = data["options"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    valid = {f.name for f in fields(DataLoaderConfig)}
    if not isinstance(options, dict) or not set(options) <= valid:
        return None
    try:
        replace(DataLoaderConfig(), **options)
    except (ConfigError, TypeError):
        return None
    return options


def save_result(path: Path, best: TuneResult) -> None:
    """Keep ``best`` as the cached answer at ``path`` (written atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"options": best.options, "samples_per_second": best.samples_per_second,
              "machine": machine_fingerprint()}  # fmt: skip
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)
