"""Where a pack is written before it exists: a hidden sibling folder per pack, adopted by a
resumed pack or removed once its process is gone, and swapped into place when complete."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from loadwise.errors import PackError
from loadwise.format.spec import MANIFEST_NAME
from loadwise.format.writer import fsync_path
from loadwise.packing.progress import PackProgress, load_progress

log = logging.getLogger(__name__)


def check_dest(dest: Path, overwrite: bool) -> None:
    if dest.exists() and not overwrite:
        raise PackError(
            f"destination `{dest}` exists; pass overwrite=True (`--overwrite`) to replace it."
        )
    if dest.exists() and not (dest / MANIFEST_NAME).is_file() and any(dest.iterdir()):
        raise PackError(
            f"destination `{dest}` is a non-empty folder that is not a loadwise dataset; "
            f"refusing to replace it. Choose another destination."
        )


def staging_dir(dest: Path, resume_key: str | None) -> tuple[Path, PackProgress | None]:
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


def publish(staging: Path, dest: Path, overwrite: bool) -> None:
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


def write_durably(path: Path, data: bytes) -> None:
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
