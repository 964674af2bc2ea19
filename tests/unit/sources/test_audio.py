"""Audio media: decoded with soundfile, mixed to mono, resampled with soxr, cut or padded;
a clip that does not decode (a truncated WAV, garbage) is a ``MediaError`` naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.media import flac, wav

from loadwise.errors import ConfigError
from loadwise.sources import AudioArray, AudioBytes, AudioFile, AudioOptions, DecodeOptions
from loadwise.sources.failures import MediaError
from loadwise.testing.sounds import clip_bytes, speech

TO_16K = DecodeOptions(audio=AudioOptions(target_sr=16_000))


def _sine(freq: float, seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    wave = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([wave] * channels, axis=1)


def _peak_hz(clip: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(clip * np.hanning(len(clip))))
    return float(np.fft.rfftfreq(len(clip), 1 / rate)[spectrum.argmax()])


def test_a_44k_stereo_flac_becomes_16k_mono_with_its_pitch_kept() -> None:
    clip = AudioBytes(clip_bytes(_sine(440, 1.5, 44_100, 2), 44_100, "FLAC"), "a.flac")
    samples = clip.prepare(TO_16K)
    assert samples.dtype == np.float32 and samples.shape == (24_000,)
    assert abs(_peak_hz(samples, 16_000) - 440) < 2
    assert 0.45 < np.abs(samples[2000:-2000]).max() < 0.55  # the mix of two equal channels


def test_an_8k_clip_is_upsampled(tmp_path: Path) -> None:
    path = tmp_path / "low.wav"
    path.write_bytes(clip_bytes(_sine(300, 2.0, 8_000), 8_000, "WAV", "PCM_16"))
    samples = AudioFile(path).prepare(TO_16K)
    assert samples.shape == (32_000,)
    assert abs(_peak_hz(samples, 16_000) - 300) < 2


@pytest.mark.parametrize("fmt", ["OGG", "MP3"])
def test_other_formats_libsndfile_reads(fmt: str) -> None:
    try:
        data = clip_bytes(_sine(500, 1.0, 22_050), 22_050, fmt)
    except Exception as exc:  # this libsndfile cannot write it: nothing to read either
        pytest.skip(f"the installed libsndfile does not write {fmt}: {exc}")
    samples = AudioBytes(data, f"a.{fmt.lower()}").prepare(TO_16K)
    assert abs(len(samples) - 16_000) < 1200  # MP3 frames pad the start and end
    assert abs(_peak_hz(samples, 16_000) - 500) < 5


def test_a_truncated_wav_is_refused_naming_it() -> None:
    whole = wav(1.0, 8_000)
    with pytest.raises(MediaError, match=r"undecodable audio: `cut.wav` is truncated"):
        AudioBytes(whole[: len(whole) // 2], "cut.wav").prepare(TO_16K)
    with pytest.raises(MediaError, match="undecodable audio: `noise.bin`"):
        AudioBytes(b"\x00\x01" * 500, "noise.bin").prepare(TO_16K)
    with pytest.raises(MediaError, match="undecodable audio: `gone.flac`"):
        AudioFile(Path("gone.flac")).prepare(TO_16K)


def test_cut_pad_and_channels_as_asked() -> None:
    stereo = flac(3.0, 44_100, 2)
    cut = AudioBytes(stereo, "s").prepare(DecodeOptions(audio=AudioOptions(max_seconds=1.25)))
    assert cut.shape == (20_000,)
    padded = DecodeOptions(audio=AudioOptions(max_seconds=4, pad=True))
    out = AudioBytes(stereo, "s").prepare(padded)
    assert out.shape == (64_000,) and not out[48_500:].any()
    kept = AudioBytes(stereo, "s").prepare(DecodeOptions(audio=AudioOptions(mono=False)))
    assert kept.shape == (2 * 48_000,)  # frames interleaved: reshape(-1, 2)
    frames = kept.reshape(-1, 2)
    assert not np.allclose(frames[:, 0], frames[:, 1])  # each channel its own tone


def test_decoded_arrays_are_fitted_too() -> None:
    pcm = (_sine(1000, 1.0, 8_000)[:, 0] * 32767).astype(np.int16)
    samples = AudioArray(pcm, 8_000, "pcm").prepare(TO_16K)
    assert samples.shape == (16_000,) and 0.45 < np.abs(samples[500:-500]).max() < 0.55
    with pytest.raises(MediaError, match="undecodable audio"):
        AudioArray(np.array(["a", "b"]), 8_000, "text").prepare(TO_16K)


def test_audio_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="target_sr"):
        AudioOptions(target_sr=0)
    with pytest.raises(ConfigError, match="max_seconds"):
        AudioOptions(max_seconds=-1)
    with pytest.raises(ConfigError, match="pad"):
        AudioOptions(pad=True)


def test_speech_when_espeak_is_installed() -> None:
    spoken = speech("loadwise keeps training fed", rate=16_000)
    if spoken is None:
        pytest.skip("espeak-ng is not installed: tones stand in for speech elsewhere")
    clip = AudioBytes(clip_bytes(spoken, 16_000, "FLAC"), "speech.flac").prepare(TO_16K)
    assert len(clip) == len(spoken) and np.abs(clip).max() > 0.05
