"""Sources: what users have, turned into named records in a fixed order for ``pack``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from loadwise.errors import SourceError
from loadwise.sources.archive import ArchiveSource, is_archive
from loadwise.sources.arrays import ArraySource, IterableSource
from loadwise.sources.audio import AudioOptions
from loadwise.sources.audio_media import AudioArray, AudioBytes, AudioFile
from loadwise.sources.base import IndexedSource, Record, Source, declared_schema
from loadwise.sources.failures import MediaError
from loadwise.sources.fetch import FetchOptions
from loadwise.sources.folder import LAYOUTS, ImageFolder, OmniglotFolder, folder_source
from loadwise.sources.hdf5 import HDF5Source, is_hdf5
from loadwise.sources.hf import HFSource, HFStreamSource, hf_source, is_hf_dataset
from loadwise.sources.lmdb import LMDBSource, is_lmdb
from loadwise.sources.media import (
    DecodeOptions,
    ImageBytes,
    ImageFile,
    ImageOptions,
    Media,
    image_size_hw,
)
from loadwise.sources.text import TextSource
from loadwise.sources.urls import ImageURL
from loadwise.sources.zarr import ZarrSource, is_zarr

__all__ = [
    "LAYOUTS",
    "ArchiveSource",
    "ArraySource",
    "AudioArray",
    "AudioBytes",
    "AudioFile",
    "AudioOptions",
    "DecodeOptions",
    "HDF5Source",
    "FetchOptions",
    "HFSource",
    "HFStreamSource",
    "ImageBytes",
    "ImageFile",
    "ImageFolder",
    "ImageOptions",
    "ImageURL",
    "IndexedSource",
    "IterableSource",
    "LMDBSource",
    "Media",
    "MediaError",
    "OmniglotFolder",
    "Record",
    "Source",
    "TextSource",
    "ZarrSource",
    "as_source",
    "declared_schema",
    "folder_source",
    "hf_source",
    "image_size_hw",
]


def as_source(obj: Any) -> Source:
    """A path (image folder, archive, HDF5 file, Zarr store, LMDB database, ``.txt`` or
    ``.jsonl`` text), a mapping of arrays, an iterable of dicts, a Hugging Face
    ``datasets.Dataset``/``IterableDataset``, or a ``Source``."""
    if isinstance(obj, str | Path):
        return _path_source(Path(obj).expanduser())
    if isinstance(obj, Source):
        return obj
    if is_hf_dataset(obj):
        return hf_source(obj)
    if isinstance(obj, Mapping):
        return ArraySource(obj)
    if isinstance(obj, Iterable):
        return IterableSource(obj)
    raise SourceError(
        f"cannot pack a {type(obj).__name__}: pass a folder or archive path, a dict of arrays, "
        f"an iterable of dicts, a Hugging Face dataset, or a loadwise.sources.Source."
    )


def _path_source(path: Path) -> Source:
    """The source a path holds, told by its content (or its suffix, for text)."""
    if is_archive(path):
        return ArchiveSource(path)
    if is_lmdb(path):
        return LMDBSource(path)
    if is_zarr(path):
        return ZarrSource(path)
    if path.is_file() and is_hdf5(path):
        return HDF5Source(path)
    if path.is_file() and path.suffix.lower() in (".txt", ".jsonl"):
        return TextSource(path)
    return folder_source(path)
