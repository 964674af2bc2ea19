"""Any source packed once into ``$LOADWISE_CACHE/<family>/``, reused while its fingerprint
holds (the text and HDF5 datasets' ``pack once, then open``), one process packing at a time."""

from __future__ import annotations

import logging
from pathlib import Path

from loadwise.cache_dir import cache_dir
from loadwise.compat.cache import _finished, _lock, _remove_stale
from loadwise.errors import PackError
from loadwise.packing import pack
from loadwise.sources import Source

log = logging.getLogger("loadwise")


def packed_once(source: Source, family: str, name: str) -> Path:
    """The packed form of ``source`` in the cache, packed now only if not there yet.

    The entry is ``<family>/<name>-<fingerprint>``; older entries of the same name (packed
    from an earlier version of the data or other options) are removed once a new one is in.
    """
    fingerprint = source.describe()["fingerprint"]
    dest = cache_dir(family) / f"{name}-{fingerprint}"
    if _finished(dest):
        return dest
    with _lock(dest):
        if not _finished(dest):
            log.info("loadwise: packing `%s` once into the cache at `%s`", name, dest)
            try:
                pack(source, dest, progress=False)
            except (PackError, OSError):
                if not _finished(dest):
                    raise
            _remove_stale(dest, name)
    return dest
