"""``InMemoryImageTextDataset`` and ``InMemoryAudioTextDataset``: a Hugging Face dataset's
images (or image URLs) or audio clips with their captions, fetched and decoded once, held in
RAM as one shared copy (eager mode), and packed into the cache so the next run opens it at
once (``hf_cache.py``).

Items are what the source documents show (a PIL image or a float32 clip, and its caption),
so ``DataLoader(ds, batch_size, shuffle=True, collate_fn=collate_in_memory_images)`` works
as written. The fast path is ``loadwise.loader(ds, batch_size)``: one gather per batch,
images as one uint8 ``(B, 3, H, W)`` tensor, audio padded with ``audio_lengths``.
With ``on_error="fallback"`` (the documents' behaviour) an item that cannot be fetched or
decoded is a black image or an empty clip, with ``valid`` False; ``report`` counts them.
"""

from __future__ import annotations

import os
import shutil
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image

from loadwise.access.base import Batch
from loadwise.compat.datasets import BaseDataset
from loadwise.compat.hf_cache import (
    LoadReport,
    discard,
    load_report,
    packed_hf,
    private_entry,
)
from loadwise.errors import ConfigError, IntegrityError, SourceError
from loadwise.sources import AudioOptions, DecodeOptions, FetchOptions, ImageOptions, hf_source
from loadwise.sources.hf import hf_datasets
from loadwise.sources.media import image_size_hw

#: Caption columns looked for, in this order, when none is named.
TEXT_COLUMNS = ("caption", "text", "captions", "sentence", "transcription", "description")
#: Image URL columns looked for when the dataset has no image column and none is named.
URL_NAMES = ("image_url", "url", "img_url", "URL")


class _InMemory(BaseDataset):
    """Load ``fields`` (packed name -> column) of ``hf_dataset`` once, then open it eager."""

    def __init__(
        self,
        hf_dataset: Any,
        max_samples: int | None,
        decode: DecodeOptions,
        fields: Mapping[str, str],
        *,
        settings: Mapping[str, Any],
    ) -> None:
        started = time.perf_counter()
        dataset = _limited(hf_dataset, max_samples)
        urls = [c for c in fields.values() if _is_string(hf_dataset, c) and c not in _texts(fields)]
        source = hf_source(
            dataset,
            length=_stream_length(hf_dataset, max_samples),
            columns=fields,
            url_columns=urls,
            fetch=settings["fetch"],
        )
        for attempt in (1, 2):  # a cache entry that fails its checksums is packed again
            path, cached = packed_hf(
                source,
                decode,
                on_error=settings["on_error"],
                max_memory_usage=settings["max_memory_usage"],
                workers=settings["workers"] or os.cpu_count() or 1,
                what=type(self).__name__,
            )
            try:
                super().__init__(path, "eager")
                break
            except IntegrityError:
                if not cached or attempt == 2:
                    raise
                discard(path)
        if private_entry(path):  # a stream's entry: its data is in RAM now, the files go
            weakref.finalize(self, shutil.rmtree, path.parent, True)
        seconds = time.perf_counter() - started
        #: Samples, valid ones, failures by reason (first URLs of each), bytes, time, cache.
        self.report: LoadReport = load_report(path, settings["on_error"], seconds, cached)

    def loader(self, batch_size: int = 64, **options: Any) -> Any:
        """``loadwise.loader`` over this dataset: whole batches, one gather each."""
        from loadwise.loading.entry import loader

        return loader(self, batch_size, **options)


class InMemoryImageTextDataset(_InMemory):
    """Images (an ``Image`` column, or URLs fetched concurrently) and captions of a Hugging
    Face dataset, decoded once to RGB ``image_size`` (``resize``: ``stretch`` or ``crop``,
    ``fit.py``; ``image_size=None, encoded=True`` keeps the files' bytes), held in RAM.

    Items: ``{"image": PIL.Image, "caption": str, "valid": bool}``. ``get_batch`` (and
    ``loadwise.loader(ds, n)``): ``image`` as one uint8 ``(B, 3, H, W)`` tensor, ``caption``
    a list, ``valid`` and ``index`` tensors. ``on_error``: ``fallback`` (black image,
    ``valid`` False), ``skip`` or ``raise``; ``max_memory_usage`` (a fraction of available
    memory) is checked from the first samples before anything is fetched; ``fetch`` sets
    timeouts, byte cap and requests in flight (in all, shared out among ``workers``).
    """

    def __init__(
        self,
        hf_dataset: Any,
        max_samples: int | None = None,
        image_size: int | tuple[int, int] | None = (224, 224),
        *,
        image_column: str | None = None,
        text_column: str | None = None,
        resize: str = "stretch",
        encoded: bool = False,
        on_error: str = "fallback",
        max_memory_usage: float | None = None,
        fetch: FetchOptions | None = None,
        workers: int | None = None,
    ) -> None:
        size = image_size_hw(image_size)
        _nonempty(hf_dataset)
        image = ImageOptions(size=size, mode="RGB", encoded=encoded, resize=resize)
        columns = {
            "image": image_column or _image_column(hf_dataset),
            "caption": text_column or _text_column(hf_dataset),
        }
        settings = _settings(on_error, max_memory_usage, fetch, workers)
        super().__init__(
            hf_dataset, max_samples, DecodeOptions(image=image), columns, settings=settings
        )

    def _item(self, batch: Batch, j: int) -> dict[str, Any]:
        image = batch["image"][j]
        pixels = np.ascontiguousarray(image.numpy().transpose(1, 2, 0))
        return {
            "image": Image.fromarray(pixels, "RGB"),
            "caption": batch["caption"][j],
            "valid": _valid(batch, j),
        }


class InMemoryAudioTextDataset(_InMemory):
    """Audio clips (an ``Audio`` column, or ``{"array", "sampling_rate"}``) and captions of a
    Hugging Face dataset, decoded once with soundfile, mixed to mono, resampled to
    ``target_sr`` with soxr, cut to ``max_seconds`` if given, held in RAM.

    Items: ``{"audio": float32 1-D numpy array, "caption": str, "sampling_rate": int,
    "valid": bool}``. ``get_batch`` (and ``loadwise.loader(ds, n)``): ``audio`` padded to the
    batch's longest clip plus ``audio_lengths``. ``on_error``, ``max_memory_usage`` as for
    ``InMemoryImageTextDataset`` (a fallback clip is empty).
    """

    def __init__(
        self,
        hf_dataset: Any,
        max_samples: int | None = None,
        target_sr: int = 16_000,
        *,
        audio_column: str | None = None,
        text_column: str | None = None,
        mono: bool = True,
        max_seconds: float | None = None,
        on_error: str = "fallback",
        max_memory_usage: float | None = None,
        workers: int | None = None,
    ) -> None:
        _nonempty(hf_dataset)
        audio = AudioOptions(target_sr=target_sr, mono=mono, max_seconds=max_seconds)
        columns = {
            "audio": audio_column or _audio_column(hf_dataset),
            "caption": text_column or _text_column(hf_dataset),
        }
        settings = _settings(on_error, max_memory_usage, None, workers)
        super().__init__(
            hf_dataset, max_samples, DecodeOptions(audio=audio), columns, settings=settings
        )
        self.sampling_rate = target_sr

    def _item(self, batch: Batch, j: int) -> dict[str, Any]:
        length = int(batch["audio_lengths"][j])
        return {
            "audio": batch["audio"][j, :length].numpy().copy(),
            "caption": batch["caption"][j],
            "sampling_rate": self.sampling_rate,
            "valid": _valid(batch, j),
        }


def collate_in_memory_images(items: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The documents' batch: ``images`` (a list of PIL images), ``captions`` (a list of str),
    and ``valid`` (a list of bool: False for fallback placeholders)."""
    return {
        "images": [item["image"] for item in items],
        "captions": [item["caption"] for item in items],
        "valid": [item.get("valid", True) for item in items],
    }


def collate_in_memory_audio(items: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The documents' batch: ``audio`` (a list of 1-D float32 numpy arrays), ``captions``,
    and ``valid`` (a list of bool)."""
    return {
        "audio": [np.asarray(item["audio"], dtype=np.float32) for item in items],
        "captions": [item["caption"] for item in items],
        "valid": [item.get("valid", True) for item in items],
    }


def _valid(batch: Batch, j: int) -> bool:
    return bool(batch["valid"][j]) if "valid" in batch else True


def _settings(
    on_error: str, max_memory_usage: float | None, fetch: FetchOptions | None, workers: int | None
) -> dict[str, Any]:
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"`workers` must be an integer >= 1 or None. Found: {workers!r}.")
    processes = workers or os.cpu_count() or 1
    fetch = fetch or FetchOptions()
    per_process = max(1, -(-fetch.in_flight // processes))  # in flight in all, shared out
    shared = replace(fetch, in_flight=per_process)
    return {
        "on_error": on_error,
        "max_memory_usage": max_memory_usage,
        "fetch": shared,
        "workers": processes,
    }


def _limited(dataset: Any, max_samples: int | None) -> Any:
    """The first ``max_samples`` rows (all of them if the dataset is shorter)."""
    if max_samples is None:
        return dataset
    if not isinstance(max_samples, int) or isinstance(max_samples, bool) or max_samples < 1:
        raise ConfigError(f"`max_samples` must be an integer >= 1 or None. Found: {max_samples!r}.")
    if isinstance(dataset, hf_datasets().IterableDataset):
        return dataset.take(max_samples)
    return dataset.select(range(min(max_samples, len(dataset))))


def _nonempty(dataset: Any) -> None:
    if not isinstance(dataset, hf_datasets().IterableDataset) and len(dataset) == 0:
        raise SourceError("the Hugging Face dataset is empty (0 rows): there is nothing to load.")


def _stream_length(dataset: Any, max_samples: int | None) -> int | None:
    if not isinstance(dataset, hf_datasets().IterableDataset):
        return None
    return max_samples


def _image_column(dataset: Any) -> str:
    datasets = hf_datasets()
    for name, feature in dataset.features.items():
        if isinstance(feature, datasets.Image):
            return str(name)
    for name in URL_NAMES:
        if _is_string(dataset, name):
            return name
    raise SourceError(
        f"no image column found (an Image feature, or URLs in one of {', '.join(URL_NAMES)}); "
        f"name it: image_column=... The columns are: {', '.join(dataset.features)}."
    )


def _audio_column(dataset: Any) -> str:
    datasets = hf_datasets()
    for name, feature in dataset.features.items():
        if isinstance(feature, datasets.Audio) or (
            isinstance(feature, dict) and set(feature) == {"array", "sampling_rate"}
        ):
            return str(name)
    raise SourceError(
        f"no audio column found (an Audio feature, or {{'array', 'sampling_rate'}}); name it: "
        f"audio_column=... The columns are: {', '.join(dataset.features)}."
    )


def _text_column(dataset: Any) -> str:
    for name in TEXT_COLUMNS:
        if _is_string(dataset, name):
            return name
    raise SourceError(
        f"no caption column found (one of {', '.join(TEXT_COLUMNS)}); name it: text_column=... "
        f"The columns are: {', '.join(dataset.features)}."
    )


def _is_string(dataset: Any, column: str) -> bool:
    feature = (dataset.features or {}).get(column)
    return getattr(feature, "dtype", None) in ("string", "large_string")


def _texts(fields: Mapping[str, str]) -> set[str]:
    return {column for name, column in fields.items() if name == "caption"}
