"""Pack an image folder once into a cache directory, and reuse it while its files are unchanged.

The cache lives in ``$LOADWISE_CACHE`` (default ``~/.cache/loadwise``). An entry's name holds
a hash of the folder's absolute path, the image size and mode, and the folder's fingerprint
(file names, sizes and modification times), so a changed file means a new entry. Processes
that race take a lock, so the folder is packed once and the others reuse it.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import xxhash

from loadwise.cache_dir import CACHE_ENV, cache_dir
from loadwise.errors import ConfigError, PackError
from loadwise.format.spec import FORMAT_VERSION, MANIFEST_NAME
from loadwise.packing import pack
from loadwise.sources import folder_source
from loadwise.sources.media import image_size_hw

log = logging.getLogger("loadwise")


def packed_folder(
    data_path: str | Path,
    *,
    image_size: int | tuple[int, int] | None,
    image_mode: str | None = None,
    on_error: str = "raise",
) -> Path:
    """The packed form of the image folder ``data_path``, packed now only if not cached yet.

    A path that already is a packed dataset (it has ``manifest.json``) is returned as it is.
    ``on_error="skip"`` leaves unreadable files out (recorded in the manifest's ``skipped``).
    """
    path = Path(data_path).expanduser().resolve()
    if (path / MANIFEST_NAME).is_file():
        return path
    size = image_size_hw(image_size)
    source = folder_source(path)
    key = json.dumps([str(path), size, image_mode, on_error, FORMAT_VERSION]).encode()
    options = xxhash.xxh3_64_hexdigest(key)
    family = f"{path.name}-{options}"
    dest = cache_dir("folders") / f"{family}-{source.describe()['fingerprint']}"
    if _finished(dest):
        return dest
    with _lock(dest):
        if not _finished(dest):
            log.info("loadwise: packing `%s` once into the cache at `%s`", path, dest)
            _pack_once(path, dest, size, image_mode, on_error)
            _remove_stale(dest, family)
    return dest


def _pack_once(
    path: Path, dest: Path, size: tuple[int, int] | None, image_mode: str | None, on_error: str
) -> None:
    """Pack, or reuse what a process that won a race (without the lock) finished first."""
    try:
        pack(folder_source(path), dest, image_size=size, image_mode=image_mode, on_error=on_error)
    except (PackError, OSError):
        if not _finished(dest):
            raise
        log.info("loadwise: another process packed `%s` first; reusing it", dest)


def _finished(dest: Path) -> bool:
    """``pack`` writes the manifest last and publishes by rename: a manifest means complete."""
    return (dest / MANIFEST_NAME).is_file()


def _remove_stale(dest: Path, family: str) -> None:
    """Drop entries of the same folder and options packed from files that have changed since."""
    for old in dest.parent.glob(f"{family}-*"):
        if old != dest and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _lock(dest: Path) -> Iterator[None]:
    """An exclusive lock beside ``dest`` (where ``fcntl`` exists) so only one process packs."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the loadwise cache folder `{dest.parent}` ({exc}): set "
            f"${CACHE_ENV} to a writable folder."
        ) from exc
    try:
        import fcntl
    except ImportError:  # no flock (Windows): pack's atomic publish and _pack_once still hold
        yield
        return
    with open(dest.parent / f".{dest.name}.lock", "wb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock
