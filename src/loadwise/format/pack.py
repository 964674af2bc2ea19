"""``pack``: read a source once and write shards plus a manifest, atomically.

Everything is written into a hidden sibling folder, fsynced, the manifest last; only then is
it renamed to the destination. A crash leaves no folder at the destination that opens.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import xxhash
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
from loadwise.format.progress import PROGRESS_NAME, PackProgress, load_progress
from loadwise.format.spec import (
    BLOCK_BYTES,
    FORMAT_VERSION,
    MANIFEST_NAME,
    Manifest,
    Skipped,
    manifest_to_json,
)
from loadwise.format.writer import ShardWriter, fsync_path
from loadwise.sources import Source, as_source

log = logging.getLogger(__name__)

DEFAULT_SHARD_BYTES = 128 * 2**20
ON_ERROR = ("raise", "skip")
_CHUNK = 32
_AHEAD_BYTES = 64 << 20
_MAX_AHEAD = 1024


@dataclass(frozen=True)
class _Plan:
    """How to pack: what every shard depends on besides the source."""

    options: PrepareOptions
    shard_bytes: int
    block_bytes: int
    workers: int
    on_error: str


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
    block_bytes: int = BLOCK_BYTES,
    workers: int = 1,
    on_error: str = "raise",
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> PackReport:
    """Pack ``source`` (a folder, arrays, an iterable of dicts) into shards at ``dest``.

    ``image_size`` (H, W) and ``image_mode`` ("L" or "RGB") fix decoded images; ``encoded``
    keeps the image files' bytes instead. ``on_error="skip"`` leaves out unreadable items
    and records them in the manifest and the report. ``block_bytes`` is the granularity of
    the per-block checksums that reads verify (default 1 MiB).

    ``resume=True`` continues a pack of the same source and options that was killed: the
    shards it finished are checked and kept, and the result is identical to an
    uninterrupted pack. Without it, leftovers of dead packs are removed.
    """
    plan = _Plan(
        _options(image_size, image_mode, encoded), shard_bytes, block_bytes, workers, on_error
    )
    _check_args(plan)
    src = as_source(source)
    dest = Path(dest).expanduser().resolve()
    _check_dest(dest, overwrite)
    started = time.perf_counter()
    described = src.describe()  # once: for a folder it stats every file
    key = _key(described, plan, resume)
    staging, done = _staging_dir(dest, key if resume else None)
    try:
        manifest = _write(src, described, staging, plan, done or PackProgress(key), progress)
        _publish(staging, dest, overwrite)
    except BaseException:
        if not resume:  # with resume the finished shards are kept for the next attempt
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
    described: dict[str, Any],
    staging: Path,
    plan: _Plan,
    done: PackProgress,
    progress: bool,
) -> Manifest:
    """Write shards (after those ``done`` lists), then the manifest; progress after each."""
    writer = (
        ShardWriter(staging, done.fields, plan.shard_bytes, plan.block_bytes, len(done.shards))
        if done.fields
        else None
    )
    bar = tqdm(total=len(src), desc="pack", unit="item", disable=not progress, leave=False)
    bar.update(done.items_done)
    with bar:
        for item, sample in _prepared(src, plan, done.items_done):
            bar.update(1)
            done.items_done += 1
            if isinstance(sample, Failed):
                if plan.on_error == "raise":
                    raise SourceError(f"{sample.reason} (pass on_error='skip' to leave it out)")
                done.skipped.append(Skipped(item, sample.reason))
                continue
            if writer is None:
                done.fields = infer_fields(sample, plan.options, src.categories)
                writer = ShardWriter(staging, done.fields, plan.shard_bytes, plan.block_bytes)
            finished = writer.add({k: unwrap(v) for k, v in sample.items()}, item)
            if finished is not None:
                done.shards.append(finished)
                done.save(staging)
    if writer is None:
        raise SourceError(
            f"no sample of `{_name(src)}` could be read; {len(done.skipped)} skipped."
        )
    last = writer.flush()
    manifest = Manifest(
        fields=writer.fields,
        shards=tuple(done.shards + ([last] if last is not None else [])),
        source=described,
        skipped=tuple(done.skipped),
        created_by=f"loadwise {__version__}",
    )
    _write_durably(staging / MANIFEST_NAME, manifest_to_json(manifest).encode())
    (staging / PROGRESS_NAME).unlink(missing_ok=True)
    fsync_path(staging)
    return manifest


def _prepared(src: Source, plan: _Plan, skip: int) -> Iterator[Prepared]:
    """Prepared records in source order after the first ``skip`` (not read at all), decoded
    in ``plan.workers`` processes when > 1 (the first chunk here, to size the pipeline)."""
    chunks = _chunks(itertools.islice(src, skip, None), _CHUNK)
    work = partial(prepare_chunk, plan.options)
    first = next(chunks, None)
    if first is None:
        return
    done = work(first)
    yield from done
    if plan.workers == 1:
        yield from itertools.chain.from_iterable(map(work, chunks))
        return
    with ProcessPoolExecutor(
        plan.workers, mp_context=_context(), initializer=die_with_parent
    ) as pool:
        ahead = _ahead(done, plan.workers)
        yield from itertools.chain.from_iterable(_bounded_map(pool, work, chunks, ahead))


def _ahead(chunk: list[Prepared], workers: int) -> int:
    """Chunks in flight: about ``_AHEAD_BYTES`` of prepared samples, so the workers keep
    decoding while this process writes a shard (with 8 chunks they idled: 1.0x -> 1.3x
    with 2 workers here), and at least 4 per worker."""
    size = sum(_nbytes(v) for _, s in chunk if not isinstance(s, Failed) for v in s.values())
    return max(4 * workers, min(_MAX_AHEAD, _AHEAD_BYTES // max(size, 1)))


def _nbytes(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return value.nbytes
    data = unwrap(value)
    return len(data) if isinstance(data, bytes | str) else 8


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


def die_with_parent() -> None:
    """In a decode worker: exit when ``pack``'s process dies (Linux ``PR_SET_PDEATHSIG``).

    Idle pool workers never notice a SIGKILLed parent by themselves; without this every
    killed ``pack`` would leave its workers behind.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the call: nobody will signal us
        os._exit(1)


_PR_SET_PDEATHSIG = 1


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


def _check_args(plan: _Plan) -> None:
    for name in ("shard_bytes", "block_bytes", "workers"):
        if getattr(plan, name) < 1:
            raise ConfigError(f"`{name}` must be >= 1. Found: {getattr(plan, name)}.")
    if plan.on_error not in ON_ERROR:
        raise ConfigError(
            f"`on_error` must be one of {', '.join(ON_ERROR)}. Found: {plan.on_error!r}."
        )


def _key(described: dict[str, Any], plan: _Plan, resume: bool) -> str:
    """What must match for a resumed pack to continue a killed one: source and options."""
    if resume and "fingerprint" not in described:
        raise ConfigError(
            f"`resume=True` needs a source whose content can be fingerprinted (a folder or "
            f"arrays); `{described.get('root', 'this source')}` ({described.get('kind')}) "
            f"cannot be. Pack without resume."
        )
    options = {**asdict(plan), "workers": None, "format": FORMAT_VERSION}
    return xxhash.xxh3_64_hexdigest(json.dumps([described, options], sort_keys=True).encode())


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


def _staging_dir(dest: Path, resume_key: str | None) -> tuple[Path, PackProgress | None]:
    """A hidden sibling of ``dest`` for this call, and the progress it resumes (if any).

    Leftovers of dead packs are adopted when resuming with the same key, else removed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in sorted(dest.parent.glob(f".{dest.name}.partial-*")):
        pid = stale.name.rsplit("-", 2)[-2]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        done = load_progress(stale, resume_key) if resume_key is not None else None
        if done is not None:
            adopted = _new_staging(dest, mkdir=False)
            stale.rename(adopted)
            log.info("resuming the pack of %s: %d shards kept", dest, len(done.shards))
            return adopted, done
        shutil.rmtree(stale, ignore_errors=True)
    return _new_staging(dest), None


def _new_staging(dest: Path, mkdir: bool = True) -> Path:
    staging = dest.parent / f".{dest.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if mkdir:
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
    fsync_path(dest.parent)
    shutil.rmtree(old, ignore_errors=True)


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


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
