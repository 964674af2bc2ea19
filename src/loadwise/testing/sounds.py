"""Seeded audio clips for tests, the example and benchmarks: tones and noise written with
soundfile (WAV, FLAC, OGG), and speech from ``espeak-ng`` where it is installed.

Nothing is downloaded. ``clip_bytes`` encodes in memory; ``speech`` returns None when
``espeak-ng`` is missing, so callers fall back to tones.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from loadwise.sources.audio import load_soundfile


def tone(seconds: float, rate: int, *, channels: int = 1, seed: int = 0) -> np.ndarray:
    """``(frames, channels)`` float32: a chord of two seeded tones plus a little noise, each
    channel its own mix, peak below 0.9."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    out = np.empty((len(t), channels), np.float32)
    for c in range(channels):
        low, high = rng.uniform(110, 880), rng.uniform(1000, min(3000, rate / 2.5))
        mix = 0.45 * np.sin(2 * np.pi * low * t) + 0.3 * np.sin(2 * np.pi * high * t + c)
        out[:, c] = mix + 0.05 * rng.standard_normal(len(t))
    return out


def clip_bytes(
    samples: np.ndarray, rate: int, fmt: str = "FLAC", subtype: str | None = None
) -> bytes:
    """``samples`` encoded as a ``fmt`` file (``WAV``, ``FLAC``, ``OGG``, ...) in memory."""
    out = io.BytesIO()
    load_soundfile().write(out, samples, rate, format=fmt, subtype=subtype)
    return out.getvalue()


def speech(text: str, rate: int = 22_050) -> np.ndarray | None:
    """``text`` spoken by ``espeak-ng`` as float32 mono at ``rate`` Hz; None if it is missing."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run([espeak, "-w", str(wav), text], check=True, capture_output=True, timeout=30)
        samples, native = load_soundfile().read(wav, dtype="float32", always_2d=True)
    if native == rate:
        return samples[:, 0]
    from loadwise.sources.audio import AudioOptions, fit_audio

    return fit_audio(samples, native, "speech", AudioOptions(target_sr=rate))
