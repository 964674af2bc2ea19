"""``pack``: read a source once and write shards plus a manifest, atomically.

Everything is written into a hidden sibling folder, fsynced, the manifest last; only then is
it renamed to the destination. A crash leaves no folder at the destination that opens.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tqdm import tqdm

from loadwise._version import __version__
from loadwise.errors import ConfigError, PackError, SourceError
from loadwise.format.prepare import (
    Failed,
    Prepared,
    PrepareOptions,
    image_size_hw,
    infer_fields,
    prepare_chunk,
    unwrap,
)
from loadwise.format.spec import MANIFEST_NAME, Manifest, Skipped, manifest_to_json
from loadwise.format.writer import ShardWriter
from loadwise.sources import Source, as_source

log = logging.getLogger(__name__)

DEFAULT_SHARD_BYTES = 128 * 2**20
ON_ERROR = ("raise", "skip")
_CHUNK = 32


@dataclass(frozen=True)
class PackReport:
    """What ``pack`` wrote and what it left out."""

    path: Path
    num_samples: int
    num_shards: int
    num_bytes: int
    skipped: tuple[Skipped, ...]
    seconds: float


def pack(
    source: Any,
    dest: str | Path,
    *,
    image_size: tuple[int, int] | int | None = None,
    image_mode: str | None = None,
    encoded: bool = False,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    workers: int = 1,
    on_error: str = "raise",
    overwrite: bool = False,
    progress: bool = True,
) -> PackReport:
    """Pack ``source`` (a folder, arrays, an iterable of dicts) into shards at ``dest``.

    ``image_size`` (H, W) and ``image_mode`` ("L" or "RGB") fix decoded images; ``encoded``
    keeps the image files' bytes instead. ``on_error="skip"`` leaves out unreadable items
    and records them in the manifest and the report.
    """
    options = _options(image_size, image_mode, encoded)
    _check_args(shard_bytes, workers, on_error)
    src = as_source(source)
    dest = Path(dest).expanduser().resolve()
    _check_dest(dest, overwrite)
    started = time.perf_counter()
    staging = _staging_dir(dest)
    try:
        manifest = _write(src, staging, options, shard_bytes, workers, on_error, progress)
        _publish(staging, dest, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    log.info("packed %d samples into %s in %.1f s", manifest.num_samples, dest, seconds)
    return PackReport(
        dest,
        manifest.num_samples,
        len(manifest.shards),
        manifest.num_bytes,
        manifest.skipped,
        seconds,
    )


def _write(
    src: Source,
    staging: Path,
    options: PrepareOptions,
    shard_bytes: int,
    workers: int,
    on_error: str,
    progress: bool,
) -> Manifest:
    writer: ShardWriter | None = None
    skipped: list[Skipped] = []
    bar = tqdm(total=len(src), desc="pack", unit="item", disable=not progress, leave=False)
    with bar:
        for item, sample in _prepared(src, options, workers):
            bar.update(1)
            if isinstance(sample, Failed):
                if on_error == "raise":
                    raise SourceError(f"{sample.reason} (pass on_error='skip' to leave it out)")
                skipped.append(Skipped(item, sample.reason))
                continue
            if writer is None:
                fields = infer_fields(sample, options, src.categories)
                writer = ShardWriter(staging, fields, shard_bytes)
            writer.add({k: unwrap(v) for k, v in sample.items()}, item)
    if writer is None:
        raise SourceError(f"no sample of `{_name(src)}` could be read; {len(skipped)} skipped.")
    manifest = Manifest(
        fields=writer.fields,
        shards=tuple(writer.finish()),
        source=src.describe(),
        skipped=tuple(skipped),
        created_by=f"loadwise {__version__}",
    )
    _write_durably(staging / MANIFEST_NAME, manifest_to_json(manifest).encode())
    _fsync_dir(staging)
    return manifest


def _prepared(src: Source, options: PrepareOptions, workers: int) -> Iterator[Prepared]:
    """Prepared records in source order, decoded in ``workers`` processes when > 1."""
    chunks = _chunks(src, _CHUNK)
    work = partial(prepare_chunk, options)
    if workers == 1:
        yield from itertools.chain.from_iterable(map(work, chunks))
        return
    with ProcessPoolExecutor(workers, mp_context=_context()) as pool:
        yield from itertools.chain.from_iterable(_bounded_map(pool, work, chunks, 4 * workers))


def _bounded_map(
    pool: ProcessPoolExecutor, work: Callable[[Any], Any], items: Iterable[Any], ahead: int
) -> Iterator[Any]:
    """Like ``pool.map``, but with at most ``ahead`` items in flight, so memory stays bounded."""
    pending: deque[Future[Any]] = deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _context() -> Any:
    """Fork where it exists: workers start at once instead of re-importing torch."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _options(
    image_size: tuple[int, int] | int | None, image_mode: str | None, encoded: bool
) -> PrepareOptions:
    size_hw = image_size_hw(image_size)
    if encoded and size_hw is not None:
        raise ConfigError(
            "`image_size` resizes decoded images; with `encoded=True` the files' bytes are kept "
            "as they are. Drop one of the two."
        )
    return PrepareOptions(image_size=size_hw, image_mode=image_mode, encoded=encoded)


def _check_args(shard_bytes: int, workers: int, on_error: str) -> None:
    if shard_bytes < 1:
        raise ConfigError(f"`shard_bytes` must be positive. Found: {shard_bytes}.")
    if workers < 1:
        raise ConfigError(f"`workers` must be >= 1. Found: {workers}.")
    if on_error not in ON_ERROR:
        raise ConfigError(f"`on_error` must be one of {', '.join(ON_ERROR)}. Found: {on_error!r}.")


def _check_dest(dest: Path, overwrite: bool) -> None:
    if dest.exists() and not overwrite:
        raise PackError(
            f"destination `{dest}` exists; pass overwrite=True (`--overwrite`) to replace it."
        )
    if dest.exists() and not (dest / MANIFEST_NAME).is_file() and any(dest.iterdir()):
        raise PackError(
            f"destination `{dest}` is a non-empty folder that is not a loadwise dataset; "
            f"refusing to replace it. Choose another destination."
        )


def _staging_dir(dest: Path) -> Path:
    """A hidden sibling of ``dest``, unique to this call; leftovers of dead packs are removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.partial-*"):
        pid = stale.name.rsplit("-", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    staging = dest.parent / f".{dest.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    return staging


def _publish(staging: Path, dest: Path, overwrite: bool) -> None:
    """Swap the finished folder into place; an old dataset is removed only after.

    Without ``overwrite`` a dataset that another process published meanwhile is kept:
    ``rename`` refuses to replace a non-empty folder, and that becomes a ``PackError``.
    """
    old = dest.parent / f".{dest.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if overwrite and dest.exists():
        dest.rename(old)
    try:
        staging.rename(dest)
    except OSError as exc:
        raise PackError(
            f"destination `{dest}` appeared while packing ({exc.strerror}); another process "
            f"wrote it. Pass overwrite=True to replace it."
        ) from exc
    _fsync_dir(dest.parent)
    shutil.rmtree(old, ignore_errors=True)


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _name(src: Source) -> str:
    return str(src.describe().get("root", type(src).__name__))
