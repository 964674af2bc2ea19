"""Audio values in a source's records that ``pack`` decodes (``audio.py``) per
``DecodeOptions.audio``: a file, encoded bytes, or samples already decoded.

Clips differ in length, so a source holding them declares the field a
``RaggedField(name, "float32")`` in its ``schema``; a batch then holds the clips padded to
the longest plus ``<name>_lengths``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loadwise.sources.audio import decode_audio, fit_audio, read_audio_file
from loadwise.sources.media import DecodeOptions, Media


@dataclass(frozen=True)
class AudioFile(Media):
    """An audio file on disk (WAV, FLAC, OGG, MP3 where libsndfile reads it)."""

    path: Path

    def prepare(self, decode: DecodeOptions) -> np.ndarray:
        return decode_audio(read_audio_file(self.path), str(self.path), decode.audio)


@dataclass(frozen=True)
class AudioBytes(Media):
    """An audio file's bytes (from a dataset column, an archive, a download)."""

    data: bytes
    name: str

    def prepare(self, decode: DecodeOptions) -> np.ndarray:
        return decode_audio(self.data, self.name, decode.audio)


@dataclass(frozen=True)
class AudioArray(Media):
    """Samples already decoded (``(frames,)`` or ``(frames, channels)``) at ``sampling_rate``."""

    samples: np.ndarray = field(repr=False)
    sampling_rate: int
    name: str

    def prepare(self, decode: DecodeOptions) -> np.ndarray:
        samples = np.asarray(self.samples)
        if samples.dtype.kind == "i":  # integer PCM: scaled to [-1, 1) as soundfile does
            samples = samples / np.float32(2 ** (8 * samples.dtype.itemsize - 1))
        return fit_audio(samples, int(self.sampling_rate), self.name, decode.audio)
