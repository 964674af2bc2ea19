"""Where a pack is written before it exists: a hidden sibling folder per pack, adopted by a
resumed pack or removed once its process is gone, and swapped into place when complete.

Replacing a dataset (``overwrite``) exchanges the two folders in one step where the kernel
can (Linux ``renameat2(RENAME_EXCHANGE)``): the destination is never missing, and a pack
killed after the swap leaves the old dataset in its staging folder, removed by the next pack
like any dead pack's leftovers (``.partial-*`` and, where two renames were needed, ``.old-*``).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from loadwise.errors import PackError
from loadwise.format.spec import MANIFEST_NAME
from loadwise.packing.progress import PackProgress, load_progress
from loadwise.system import fsync_path, process_alive

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
    for stale in _leftovers(dest, "old"):
        if _dead(stale):
            shutil.rmtree(stale, ignore_errors=True)
    for stale in _leftovers(dest, "partial"):
        if not _dead(stale):
            continue
        done = load_progress(stale, resume_key) if resume_key is not None else None
        if done is not None:
            adopted = _new_staging(dest, mkdir=False)
            stale.rename(adopted)
            log.info("resuming the pack of %s: %d shards kept", dest, len(done.shards))
            return adopted, done
        shutil.rmtree(stale, ignore_errors=True)
    return _new_staging(dest), None


def _leftovers(dest: Path, what: str) -> list[Path]:
    """This destination's ``.<name>.<what>-<pid>-<hex>`` folders, and nothing else: names are
    matched exactly (no glob: ``data[1]`` must not match ``data1``'s), and only folders."""
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.{what}-\d+-[0-9a-f]{{8}}")
    return sorted(
        entry
        for entry in dest.parent.iterdir()
        if pattern.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink()
    )


def _new_staging(dest: Path, mkdir: bool = True) -> Path:
    staging = dest.parent / f".{dest.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if mkdir:
        staging.mkdir()
    return staging


def publish(staging: Path, dest: Path, overwrite: bool, durable: bool = True) -> None:
    """Swap the finished folder into place; an old dataset is removed only after (the
    rename made durable unless not ``durable``).

    Without ``overwrite`` a dataset that another process published meanwhile is kept:
    ``rename`` refuses to replace a non-empty folder, and that becomes a ``PackError``.
    """
    sync = fsync_path if durable else _no_sync
    if overwrite and dest.exists() and _exchange(staging, dest):
        sync(dest.parent)
        shutil.rmtree(staging, ignore_errors=True)  # now the old dataset
        return
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
    sync(dest.parent)
    shutil.rmtree(old, ignore_errors=True)


def write_durably(path: Path, data: bytes, durable: bool = True) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())


def _no_sync(path: Path) -> None:
    """``fsync_path``'s stand-in for packs that trade durability for speed."""


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """glibc's ``renameat2`` (2.28+, Linux 3.15+), else None."""
    if not sys.platform.startswith("linux"):
        return None
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                             ctypes.c_uint]  # fmt: skip
    return function


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically; False where the system cannot (two renames instead)."""
    function = _renameat2()
    if function is None:
        return False
    return function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _dead(leftover: Path) -> bool:
    """Whether the pack that made ``.<name>.<what>-<pid>-<hex>`` has ended."""
    pid = leftover.name.rsplit("-", 2)[-2]
    return pid.isdigit() and not process_alive(int(pid))
