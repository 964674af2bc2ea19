"""Audio clips to float32 samples: decoded with soundfile (libsndfile: WAV, FLAC, OGG, and MP3
where the installed libsndfile reads it), mixed to mono unless asked, resampled to
``target_sr`` with soxr, cut or padded to ``max_seconds``.

soxr was chosen by measurement (``benchmarks/multimodal.py`` prints the comparison): 10 s
of 48 kHz to 16 kHz took ~2 ms at its HQ setting with aliasing below -150 dB, where
libsamplerate's best sinc took ~450 ms for the same quality and scipy's ``resample_poly``
~18 ms with a transition band that let a 9 kHz tone through at -35 dB.
The media values that ``pack`` decodes with these options are in ``audio_media.py``.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loadwise.errors import ConfigError, MissingExtraError
from loadwise.sources.failures import UNDECODABLE_AUDIO, MediaError


@dataclass(frozen=True)
class AudioOptions:
    """How ``pack`` stores audio: resampled to ``target_sr`` Hz, mixed to ``mono`` (else the
    channels are kept, interleaved frame by frame in the 1-D clip), cut to ``max_seconds``
    when given, and with ``pad`` zero-padded to exactly that length."""

    target_sr: int = 16_000
    mono: bool = True
    max_seconds: float | None = None
    pad: bool = False

    def __post_init__(self) -> None:
        if (
            not isinstance(self.target_sr, int)
            or isinstance(self.target_sr, bool)
            or (self.target_sr < 1)
        ):
            raise ConfigError(
                f"`target_sr` must be an integer >= 1 (Hz). Found: {self.target_sr!r}."
            )
        seconds = self.max_seconds
        if seconds is not None and (not isinstance(seconds, int | float) or not seconds > 0):
            raise ConfigError(
                f"`max_seconds` must be a positive number or None. Found: {seconds!r}."
            )
        if self.pad and seconds is None:
            raise ConfigError("`pad=True` pads clips to `max_seconds`; give `max_seconds` too.")

    @property
    def max_samples(self) -> int | None:
        """Samples per channel a clip keeps at most, at ``target_sr``."""
        return None if self.max_seconds is None else math.ceil(self.max_seconds * self.target_sr)


def decode_audio(data: bytes, name: str, options: AudioOptions) -> np.ndarray:
    """An encoded clip as float32 samples at ``options.target_sr``; ``MediaError`` naming
    ``name`` if it does not decode (or a WAV is shorter than its header says)."""
    soundfile = load_soundfile()
    _check_wav_length(data, name)
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as clip:
            rate = clip.samplerate
            frames = -1 if options.max_seconds is None else math.ceil(options.max_seconds * rate)
            samples = clip.read(frames=frames, dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, TypeError, EOFError) as exc:  # soundfile's errors
        raise MediaError(UNDECODABLE_AUDIO, name, f"does not decode: {exc}") from exc
    return fit_audio(samples, rate, name, options)


def read_audio_file(path: Path) -> bytes:
    """A clip's bytes from disk; ``MediaError`` naming it if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MediaError(UNDECODABLE_AUDIO, str(path), f"cannot be read: {exc}") from exc


def fit_audio(samples: np.ndarray, rate: int, name: str, options: AudioOptions) -> np.ndarray:
    """``(frames, channels)`` float samples at ``rate`` Hz as the stored 1-D clip."""
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2 or not np.issubdtype(samples.dtype, np.floating) or rate < 1:
        raise MediaError(
            UNDECODABLE_AUDIO, name, f"holds {samples.dtype} samples of shape {samples.shape} at "
            f"{rate} Hz; expected float frames x channels at a positive rate.",
        )  # fmt: skip
    samples = samples.astype(np.float32, copy=False)
    if options.mono and samples.shape[1] > 1:
        samples = _mixed(samples)
    if rate != options.target_sr and len(samples):
        samples = _soxr().resample(samples, rate, options.target_sr, quality="HQ")
    keep = options.max_samples
    if keep is not None:
        samples = samples[:keep]
        if options.pad and len(samples) < keep:
            samples = np.pad(samples, ((0, keep - len(samples)), (0, 0)))
    return np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)


def _mixed(samples: np.ndarray) -> np.ndarray:
    """The channels' mean, ``(frames, 1)``: column by column (numpy's ``mean`` along a short
    last axis took 10 ms for 10 s of stereo here, this 0.2 ms)."""
    mono = samples[:, 0].copy()
    for channel in range(1, samples.shape[1]):
        mono += samples[:, channel]
    mono *= np.float32(1 / samples.shape[1])
    return mono[:, None]


def _check_wav_length(data: bytes, name: str) -> None:
    """libsndfile reads a truncated WAV without complaint (fewer frames than declared): refuse
    one whose ``data`` chunk declares more bytes than the file holds."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = (
            data[offset : offset + 4],
            struct.unpack("<I", data[offset + 4 : offset + 8])[0],
        )
        if chunk == b"data":
            if size not in (0, 0xFFFFFFFF) and offset + 8 + size > len(data):
                raise MediaError(
                    UNDECODABLE_AUDIO, name, f"is truncated: its data chunk declares {size:,} "
                    f"bytes, the file holds {len(data) - offset - 8:,}.",
                )  # fmt: skip
            return
        offset += 8 + size + (size & 1)


def load_soundfile() -> Any:
    try:
        import soundfile
    except (ImportError, OSError):  # OSError: the wheel's libsndfile failed to load
        raise MissingExtraError(
            "decoding audio needs soundfile: pip install 'loadwise[audio]'."
        ) from None
    return soundfile


def _soxr() -> Any:
    try:
        import soxr
    except ImportError:
        raise MissingExtraError(
            "resampling audio needs soxr: pip install 'loadwise[audio]'."
        ) from None
    return soxr
