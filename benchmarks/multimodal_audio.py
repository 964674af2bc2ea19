"""Audio figures for ``benchmarks/multimodal.py``: loadwise's decode + resample rate on one
core (44.1 kHz stereo FLAC to 16 kHz mono), soundfile's decode alone, and the resamplers
compared on the same clips: speed (x real time) and how loud a 9 kHz tone comes back at
16 kHz, where it must be removed (it would fold to 7 kHz)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from loadwise.sources import AudioBytes, AudioOptions, DecodeOptions
from loadwise.sources.audio import load_soundfile
from loadwise.testing.sounds import clip_bytes, tone

RATE, TARGET, SECONDS, CLIPS = 44_100, 16_000, 10.0, 12


def measure(rounds: int = 3) -> dict[str, Any]:
    clips = [
        clip_bytes(tone(SECONDS, RATE, channels=2, seed=i), RATE, "FLAC") for i in range(CLIPS)
    ]
    audio_seconds = SECONDS * CLIPS
    decode = DecodeOptions(audio=AudioOptions(target_sr=TARGET))

    def loadwise_clips() -> None:
        for i, data in enumerate(clips):
            AudioBytes(data, f"clip{i}").prepare(decode)

    def soundfile_only() -> None:
        import io

        for data in clips:
            load_soundfile().read(io.BytesIO(data), dtype="float32", always_2d=True)

    out: dict[str, Any] = {
        "decode_resample_rt": audio_seconds / _best(loadwise_clips, rounds),
        "decode_rt": audio_seconds / _best(soundfile_only, rounds),
        "resamplers": _resamplers(rounds),
    }
    return out


def _best(work: Callable[[], object], rounds: int) -> float:
    work()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _resamplers(rounds: int) -> dict[str, dict[str, float]]:
    t = np.arange(round(SECONDS * 48_000)) / 48_000
    clip = (0.5 * np.sin(2 * np.pi * 1000 * t) + 0.3 * np.sin(2 * np.pi * 9000 * t)).astype(
        np.float32
    )
    out = {}
    for name, resample in _candidates().items():
        seconds = _best(lambda r=resample: r(clip), rounds)  # type: ignore[misc]
        out[name] = {"rt": SECONDS / seconds, "alias_db": _alias_db(resample(clip))}
    return out


def _candidates() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Every resampler installed here (samplerate and scipy come with the ``bench`` extra)."""
    import soxr

    found: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "soxr HQ (loadwise)": lambda x: soxr.resample(x, 48_000, TARGET, quality="HQ"),
        "soxr VHQ": lambda x: soxr.resample(x, 48_000, TARGET, quality="VHQ"),
    }
    try:
        import samplerate

        found["libsamplerate sinc_best"] = lambda x: samplerate.resample(
            x, TARGET / 48_000, "sinc_best"
        )
        found["libsamplerate sinc_fastest"] = lambda x: samplerate.resample(
            x, TARGET / 48_000, "sinc_fastest"
        )
    except ImportError:
        pass
    try:
        from scipy.signal import resample_poly

        found["scipy resample_poly"] = lambda x: resample_poly(x, 1, 3)
    except ImportError:
        pass
    return found


def _alias_db(y: np.ndarray) -> float:
    """Level of the folded 9 kHz tone (at 7 kHz) against the 1 kHz tone, dB."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / TARGET)
    fold, tone_ = spectrum[np.argmin(abs(freqs - 7000))], spectrum[np.argmin(abs(freqs - 1000))]
    return float(20 * np.log10(fold / tone_ + 1e-20))


def print_table(audio: dict[str, Any]) -> None:
    print(f"\naudio, one core: decode + resample {audio['decode_resample_rt']:,.0f}x real time; "
          f"soundfile decode alone {audio['decode_rt']:,.0f}x")  # fmt: skip
    print(f"{'resampler (48 -> 16 kHz)':30s}{'x real time':>12s}{'9 kHz folded':>14s}")
    for name, row in audio["resamplers"].items():
        print(f"{name:30s}{row['rt']:12,.0f}{row['alias_db']:11.0f} dB")
