"""``pack``: read a source once and write shards plus a manifest, atomically.

Everything is written into a hidden sibling folder, fsynced, the manifest last; only then is
it renamed to the destination. A crash leaves no folder at the destination that opens.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import xxhash
from tqdm import tqdm

from loadwise._version import __version__
from loadwise.errors import ConfigError, PackError, SourceError
from loadwise.format.pipeline import prepared
from loadwise.format.prepare import Failed, PrepareOptions, image_size_hw, infer_fields, unwrap
from loadwise.format.progress import PROGRESS_NAME, PackProgress, load_progress
from loadwise.format.slots import Piece, RowBlock
from loadwise.format.spec import (
    BLOCK_BYTES,
    FORMAT_VERSION,
    MANIFEST_NAME,
    FieldSpec,
    Manifest,
    ShardSpec,
    Skipped,
    manifest_to_json,
)
from loadwise.format.writer import ShardWriter, fsync_path
from loadwise.sources import Source, as_source

log = logging.getLogger(__name__)

DEFAULT_SHARD_BYTES = 128 * 2**20
ON_ERROR = ("raise", "skip")


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
    shards = _Shards(staging, plan, done, src.categories)
    bar = tqdm(total=len(src), desc="pack", unit="item", disable=not progress, leave=False)
    bar.update(done.items_done)
    with bar:
        for piece in prepared(src, plan.options, plan.workers, done.items_done, done.fields):
            bar.update(shards.add(piece))
    if shards.writer is None:
        raise SourceError(
            f"no sample of `{_name(src)}` could be read; {len(done.skipped)} skipped."
        )
    return shards.finish(described)


class _Shards:
    """Prepared pieces into shards in the staging folder, ``on_error`` applied in source
    order, progress saved after every shard."""

    def __init__(
        self, staging: Path, plan: _Plan, done: PackProgress, categories: Mapping[str, Any]
    ) -> None:
        self.staging, self.plan, self.done, self.categories = staging, plan, done, categories
        self.writer = self._writer(done.fields, len(done.shards)) if done.fields else None

    def _writer(self, fields: tuple[FieldSpec, ...], first_shard: int = 0) -> ShardWriter:
        plan = self.plan
        return ShardWriter(self.staging, fields, plan.shard_bytes, plan.block_bytes, first_shard)

    def add(self, piece: Piece) -> int:
        """Take one piece; returns how many source items it held."""
        if isinstance(piece, RowBlock):
            self._add_block(piece)
            return len(piece.items)
        self._add_sample(*piece)
        return 1

    def _add_sample(self, item: str, sample: dict[str, Any] | Failed) -> None:
        self.done.items_done += 1
        if isinstance(sample, Failed):
            if self.plan.on_error == "raise":
                raise SourceError(f"{sample.reason} (pass on_error='skip' to leave it out)")
            self.done.skipped.append(Skipped(item, sample.reason))
            return
        if self.writer is None:
            self.done.fields = infer_fields(sample, self.plan.options, self.categories)
            self.writer = self._writer(self.done.fields)
        self._finished(self.writer.add({k: unwrap(v) for k, v in sample.items()}, item))

    def _add_block(self, block: RowBlock) -> None:
        assert self.writer is not None, "rows come only after the sample that fixed the fields"
        start = 0
        while start < len(block.items):
            arrays = {k: v[start:] for k, v in block.arrays.items()}
            values = {k: v[start:] for k, v in block.values.items()}
            taken, shard = self.writer.add_rows(arrays, values, block.items[start:])
            self.done.items_done += taken
            start += taken
            self._finished(shard)

    def _finished(self, shard: ShardSpec | None) -> None:
        if shard is not None:
            self.done.shards.append(shard)
            self.done.save(self.staging)

    def finish(self, described: dict[str, Any]) -> Manifest:
        """Write the last shard and the manifest, durably; drop the progress file."""
        assert self.writer is not None
        last = self.writer.flush()
        manifest = Manifest(
            fields=self.writer.fields,
            shards=tuple(self.done.shards + ([last] if last is not None else [])),
            source=described,
            skipped=tuple(self.done.skipped),
            created_by=f"loadwise {__version__}",
        )
        _write_durably(self.staging / MANIFEST_NAME, manifest_to_json(manifest).encode())
        (self.staging / PROGRESS_NAME).unlink(missing_ok=True)
        fsync_path(self.staging)
        return manifest


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
