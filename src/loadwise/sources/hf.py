"""A Hugging Face ``datasets.Dataset`` (or ``IterableDataset``, read in order) as a source.

Each column gets a role from its feature: ``Image`` columns (bytes or a path) become
``ImageBytes``/``ImageFile``, string columns holding image URLs (``image_url``, ``url``, ...,
or named by the caller) become ``ImageURL`` (fetched concurrently while reading,
``urls.py``), ``Audio`` columns and ``{"array", "sampling_rate"}`` columns become audio
media (``audio_media.py``), other strings stay ``str``, numbers and ``ClassLabel``\\ s stay
numbers (class names as ``categories``). Media columns are read undecoded
(``Image(decode=False)``, ``Audio(decode=False)``) and decoded by ``pack``: ``datasets`` 4+
decodes audio only through torchcodec and FFmpeg, which many users lack.

A map-style dataset reads any index range (``records``), so ``pack``'s forked workers each
read and fetch their own ranges; an ``IterableDataset`` is read in order in one process.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from loadwise.errors import MissingExtraError, SourceError
from loadwise.format.fields import RaggedField
from loadwise.sources.audio_media import AudioArray, AudioBytes, AudioFile
from loadwise.sources.base import Record
from loadwise.sources.failures import MISSING, MediaError
from loadwise.sources.fetch import FetchOptions
from loadwise.sources.media import DecodeOptions, ImageBytes, ImageFile, Media
from loadwise.sources.tally import Tally
from loadwise.sources.urls import ImageURL, prefetched

#: String columns read as image URLs unless the caller names others.
URL_COLUMNS = ("image_url", "url", "img_url", "image_urls", "URL")
IMAGE, URL, AUDIO, AUDIO_ARRAY, TEXT, NUMBER, LABEL, BYTES = (
    "image", "url", "audio", "audio array", "text", "number", "label", "bytes",
)  # fmt: skip
_STRINGS = ("string", "large_string")
_BINARY = ("binary", "large_binary")
_ROWS = 256  # rows read from the dataset at a time


@dataclass(frozen=True)
class Column:
    """One field of the records: the dataset column it comes from and its role."""

    column: str
    role: str
    dtype: str | None = None  # numbers: the feature's numpy dtype


class _HFBase:
    """What both kinds of HF source share: columns and roles, records, description."""

    kind = "hf"

    def __init__(
        self,
        dataset: Any,
        *,
        columns: Sequence[str] | Mapping[str, str] | None = None,
        url_columns: Sequence[str] | None = None,
        fetch: FetchOptions | None = None,
    ) -> None:
        datasets = hf_datasets()
        features = dataset.features
        if features is None:
            raise SourceError(
                "this Hugging Face dataset does not know its features (columns and types); "
                "resolve them first: `dataset = dataset._resolve_features()`, or cast them."
            )
        self.fields = _roles(features, columns, url_columns, datasets)
        self.fetch = fetch or FetchOptions()
        self.categories = {
            name: tuple(features[c.column].names)
            for name, c in self.fields.items()
            if c.role == LABEL
        }
        #: Audio clips differ in length: declared as ragged float32 fields.
        self.schema = tuple(
            RaggedField(name, "float32")
            for name, c in self.fields.items()
            if c.role in (AUDIO, AUDIO_ARRAY)
        )
        self.tally = Tally()  # items, bytes and failures, for a progress bar in the parent
        used = dataset.select_columns(sorted({c.column for c in self.fields.values()}))
        plain = used.with_format(None)  # python values, whatever format the caller had set
        self.dataset = _undecoded(plain, self.fields, datasets)

    def describe(self) -> dict[str, Any]:
        roles = {name: [c.column, c.role] for name, c in self.fields.items()}
        described: dict[str, Any] = {"kind": self.kind, "items": len(self), "fields": roles}
        if any(c.role == URL for c in self.fields.values()):  # in_flight changes no byte
            described["fetch"] = {k: v for k, v in asdict(self.fetch).items() if k != "in_flight"}
        fingerprint = getattr(self.dataset, "_fingerprint", None)
        if fingerprint is not None:
            text = json.dumps([fingerprint, described], sort_keys=True)
            described["fingerprint"] = xxhash.xxh3_64_hexdigest(text.encode())
        return described

    def __len__(self) -> int:
        raise NotImplementedError

    def peek(self, count: int) -> list[tuple[str, Record]]:
        """The first ``count`` records as they are read, URLs not fetched (for estimates)."""
        return [self._record(i, row) for i, row in self._rows(0, min(count, len(self)))]

    def _rows(self, start: int, stop: int) -> Iterator[tuple[int, Mapping[str, Any]]]:
        raise NotImplementedError

    def _records(
        self, rows: Iterable[tuple[int, Mapping[str, Any]]]
    ) -> Iterator[tuple[str, Record]]:
        """Rows as records, counted, URLs fetched ahead when there are any."""
        records = map(self._counted, (self._record(i, row) for i, row in rows))
        if any(c.role == URL for c in self.fields.values()):
            return prefetched(records, self.fetch.in_flight, self.tally)
        return records

    def _record(self, index: int, row: Mapping[str, Any]) -> tuple[str, Record]:
        fields = self.fields.items()
        return str(index), {name: _value(c, row[c.column], index, self.fetch) for name, c in fields}

    def _counted(self, item: tuple[str, Record]) -> tuple[str, Record]:
        media = [v for v in item[1].values() if isinstance(v, ImageBytes | AudioBytes)]
        self.tally.add(items=1, nbytes=sum(len(v.data) for v in media))
        return item


class HFSource(_HFBase):
    """A map-style ``datasets.Dataset``: sized, and any index range read on its own."""

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[tuple[str, Record]]:
        return self.records(0, len(self))

    def records(self, start: int, stop: int) -> Iterator[tuple[str, Record]]:
        return self._records(self._rows(start, min(stop, len(self))))

    def _rows(self, start: int, stop: int) -> Iterator[tuple[int, Mapping[str, Any]]]:
        for first in range(start, stop, _ROWS):
            block = self.dataset[first : min(first + _ROWS, stop)]
            names = list(block)
            for offset, values in enumerate(zip(*(block[n] for n in names), strict=True)):
                yield first + offset, dict(zip(names, values, strict=True))


class HFStreamSource(_HFBase):
    """A ``datasets.IterableDataset``, read in order (its length given, or from its info)."""

    def __init__(self, dataset: Any, *, length: int | None = None, **options: Any) -> None:
        super().__init__(dataset, **options)
        self._length = length if length is not None else _known_length(dataset)

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[tuple[str, Record]]:
        return self._records(self._rows(0, self._length))

    def _rows(self, start: int, stop: int) -> Iterator[tuple[int, Mapping[str, Any]]]:
        return itertools.islice(enumerate(self.dataset), start, min(stop, self._length))


def hf_source(
    dataset: Any, *, length: int | None = None, **options: Any
) -> HFSource | HFStreamSource:
    """The source for a ``datasets.Dataset`` or ``IterableDataset`` (``length`` for a stream
    whose info does not say how many rows it has); ``options`` as ``HFSource`` takes."""
    datasets = hf_datasets()
    if isinstance(dataset, datasets.IterableDataset):
        return HFStreamSource(dataset, length=length, **options)
    if isinstance(dataset, datasets.Dataset):
        return HFSource(dataset, **options)
    raise SourceError(
        f"expected a datasets.Dataset or IterableDataset, got {type(dataset).__name__}."
    )


def is_hf_dataset(obj: Any) -> bool:
    """Whether ``obj`` is a Hugging Face dataset (checked without importing ``datasets``)."""
    return type(obj).__module__.startswith("datasets.") and hasattr(obj, "features")


def hf_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise MissingExtraError(
            "reading Hugging Face datasets needs `datasets`: pip install 'loadwise[hf]'."
        ) from None
    return datasets


@dataclass(frozen=True)
class _Missing(Media):
    """A row whose media value is empty (None); ``prepare`` says so."""

    column: str
    index: int

    def prepare(self, decode: DecodeOptions) -> Any:
        raise MediaError(MISSING, f"{self.column}[{self.index}]", "is empty in the dataset.")


def _value(column: Column, value: Any, index: int, fetch: FetchOptions) -> Any:
    role, name = column.role, f"{column.column}[{index}]"
    if role == TEXT:
        return "" if value is None else str(value)
    if role in (NUMBER, LABEL):
        return (
            value if column.dtype is None or value is None else np.dtype(column.dtype).type(value)
        )
    if role == BYTES:
        return b"" if value is None else bytes(value)
    if role == URL:
        return ImageURL(value, fetch) if value else _Missing(column.column, index)
    if role == AUDIO_ARRAY:
        if not value or value.get("array") is None:
            return _Missing(column.column, index)
        return AudioArray(np.asarray(value["array"]), int(value["sampling_rate"]), name)
    if not value or (value.get("bytes") is None and not value.get("path")):
        return _Missing(column.column, index)
    data, path = value.get("bytes"), value.get("path")
    if role == IMAGE:
        return ImageBytes(data, path or name) if data is not None else ImageFile(Path(path))
    return AudioBytes(data, path or name) if data is not None else AudioFile(Path(path))


def _roles(
    features: Mapping[str, Any],
    columns: Sequence[str] | Mapping[str, str] | None,
    url_columns: Sequence[str] | None,
    datasets: Any,
) -> dict[str, Column]:
    """Field name -> column and role; columns named by the caller must have a role."""
    wanted = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns or features}
    urls = set(URL_COLUMNS if url_columns is None else url_columns)
    for column in [*wanted.values(), *(url_columns or ())]:
        if column not in features:
            raise SourceError(
                f"the dataset has no column `{column}`; its columns: {', '.join(features)}."
            )
    out = {}
    for name, column in wanted.items():
        role = _role(features[column], column in urls, datasets)
        if role is None and columns is not None:
            raise SourceError(
                f"column `{column}` holds {features[column]!r}, which loadwise cannot store "
                f"(images, audio, image URLs, text, bytes and numbers it can). Leave it out of "
                f"`columns`."
            )
        if role is not None:
            out[name] = Column(column, role[0], role[1])
    if not out:
        raise SourceError(f"no column of this dataset can be stored ({dict(features)!r}).")
    return out


def _role(feature: Any, is_url: bool, datasets: Any) -> tuple[str, str | None] | None:
    if isinstance(feature, datasets.Image):
        return IMAGE, None
    if isinstance(feature, datasets.Audio):
        return AUDIO, None
    if isinstance(feature, datasets.ClassLabel):
        return LABEL, "int64"
    if isinstance(feature, dict) and set(feature) == {"array", "sampling_rate"}:
        return AUDIO_ARRAY, None
    if not isinstance(feature, datasets.Value):
        return None
    if feature.dtype in _STRINGS:
        return (URL if is_url else TEXT), None
    if feature.dtype in _BINARY:
        return BYTES, None
    try:
        dtype = np.dtype(feature.dtype)
    except TypeError:
        return None
    return (NUMBER, str(dtype)) if dtype.kind in "biuf" else None


def _undecoded(dataset: Any, fields: Mapping[str, Column], datasets: Any) -> Any:
    """Media columns cast to their undecoded form (bytes or path)."""
    for column in {c.column for c in fields.values()}:
        feature = dataset.features[column]
        if isinstance(feature, datasets.Image) and feature.decode:
            dataset = dataset.cast_column(column, datasets.Image(decode=False))
        if isinstance(feature, datasets.Audio) and feature.decode:
            dataset = dataset.cast_column(column, datasets.Audio(decode=False))
    return dataset


def _known_length(dataset: Any) -> int:
    splits = getattr(dataset.info, "splits", None) or {}
    split = splits.get(str(dataset.split)) if dataset.split is not None else None
    if split is not None and split.num_examples:
        return int(split.num_examples)
    raise SourceError(
        "this IterableDataset does not say how many rows it has: pass `length=` (or "
        "`max_samples=`) so progress and shard sizes are known."
    )
