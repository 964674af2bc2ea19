"""Pack a source (an image folder, text, HDF5, ...) once into a cache directory, and reuse it
while its content is unchanged.

The cache lives in ``$LOADWISE_CACHE`` (default ``~/.cache/loadwise``). An entry's name holds
a hash of the folder's absolute path, the image size and mode, and the folder's fingerprint
(file names, sizes and modification times), so a changed file means a new entry. Processes
that race take a lock, so the folder is packed once and the others reuse it.
"""

from __future__ import annotations

import glob
import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import xxhash

from loadwise.cache_dir import CACHE_ENV, cache_dir
from loadwise.errors import ConfigError, PackError
from loadwise.format.spec import FORMAT_VERSION, MANIFEST_NAME
from loadwise.packing import pack
from loadwise.sources import Source, folder_source
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
    key = json.dumps([str(path), size, image_mode, on_error, FORMAT_VERSION]).encode()
    name = f"{path.name}-{xxhash.xxh3_64_hexdigest(key)}"
    options = {"image_size": size, "image_mode": image_mode, "on_error": on_error}
    return packed_once(folder_source(path), "folders", name, **options)


def packed_once(source: Source, family: str, name: str, **pack_options: Any) -> Path:
    """The packed form of ``source`` at ``$LOADWISE_CACHE/<family>/<name>-<fingerprint>``,
    packed now (with ``pack_options``) only if not there yet, one process at a time.

    ``name`` must say everything besides the source's content that the packed bytes depend
    on (options, the source's location); entries of the same ``name`` packed from older
    content are removed once the new one is in.
    """
    dest = cache_dir(family) / f"{name}-{source.describe()['fingerprint']}"
    if finished(dest):
        return dest
    with locked(dest):
        if not finished(dest):
            log.info("loadwise: packing `%s` once into the cache at `%s`", name, dest)
            _pack_once(source, dest, pack_options)
            _remove_stale(dest, name)
    return dest


def _pack_once(source: Source, dest: Path, options: dict[str, Any]) -> None:
    """Pack, or reuse what a process that won a race (without the lock) finished first."""
    try:
        pack(source, dest, **options)
    except (PackError, OSError):
        if not finished(dest):
            raise
        log.info("loadwise: another process packed `%s` first; reusing it", dest)


def finished(dest: Path) -> bool:
    """``pack`` writes the manifest last and publishes by rename: a manifest means complete."""
    return (dest / MANIFEST_NAME).is_file()


def _remove_stale(dest: Path, name: str) -> None:
    """Drop entries of the same ``name`` packed from content that has changed since."""
    for old in dest.parent.glob(f"{glob.escape(name)}-*"):
        if old != dest and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


@contextmanager
def locked(dest: Path) -> Iterator[None]:
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
