"""Small numpy audio helpers shared by the data generator and the evaluation: WAV I/O, resampling,
G.711 mu-law and telephony degradation. No torch, no scipy."""
from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np


def read_wav(path: str | Path | bytes) -> tuple[np.ndarray, int]:
    """-> (float32 [channels, samples] in [-1, 1], sample rate). PCM 8/16/32-bit only."""
    src = io.BytesIO(path) if isinstance(path, bytes) else str(path)
    what = f"{len(path)} bytes of audio" if isinstance(path, bytes) else str(path)
    try:
        with wave.open(src, "rb") as w:
            ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{what}: not a PCM WAV file ({e})") from None
    if width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648.0
    else:
        raise ValueError(f"{what}: unsupported sample width {width} bytes")
    return x.reshape(-1, ch).T.copy(), rate


def write_wav(path: str | Path, audio: np.ndarray, rate: int) -> None:
    """audio: float [channels, samples] or [samples]."""
    a = np.atleast_2d(np.asarray(audio, np.float32))
    pcm = (np.clip(a, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(a.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.T.tobytes())


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited FFT resampling along the last axis (zero-padded to avoid wrap-around)."""
    if sr_in == sr_out:
        return np.asarray(x, np.float32)
    x = np.asarray(x, np.float32)
    n = x.shape[-1]
    pad = max(64, int(0.05 * sr_in))
    xp = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)])
    m = xp.shape[-1]
    m_out = int(round(m * sr_out / sr_in))
    spec = np.fft.rfft(xp, axis=-1)
    k = min(spec.shape[-1], m_out // 2 + 1)
    out_spec = np.zeros(x.shape[:-1] + (m_out // 2 + 1,), np.complex64)
    out_spec[..., :k] = spec[..., :k]
    y = np.fft.irfft(out_spec, n=m_out, axis=-1) * (m_out / m)
    p_out = int(round(pad * sr_out / sr_in))
    return y[..., p_out:p_out + int(round(n * sr_out / sr_in))].astype(np.float32)


_MU = 255.0


def mulaw_roundtrip(x: np.ndarray) -> np.ndarray:
    """Encode to 8-bit G.711-style mu-law and decode again (quantisation noise included)."""
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(_MU * np.abs(x)) / np.log1p(_MU)
    q = np.round((y + 1.0) * 127.5) / 127.5 - 1.0
    return (np.sign(q) * ((1.0 + _MU) ** np.abs(q) - 1.0) / _MU).astype(np.float32)


def bandpass(x: np.ndarray, sr: int, lo: float = 300.0, hi: float = 3400.0) -> np.ndarray:
    """Telephone band-pass: an FFT brick wall with soft edges (whole signal at once)."""
    n = x.shape[-1]
    spec = np.fft.rfft(x, axis=-1)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    g = np.clip((f - lo * 0.7) / (lo * 0.3), 0, 1) * np.clip((hi * 1.1 - f) / (hi * 0.1), 0, 1)
    return np.fft.irfft(spec * g, n=n, axis=-1).astype(np.float32)


def telephony(x: np.ndarray, sr: int, rng: np.random.Generator | None = None, loss: float = 0.0) -> np.ndarray:
    """What a PSTN leg does to audio: down to 8 kHz, band-pass, mu-law, optional 20 ms packet loss
    concealed by repeating the previous packet at falling gain, back up to `sr`."""
    y = resample(x, sr, 8000)
    y = bandpass(y, 8000)
    y = mulaw_roundtrip(y)
    if loss > 0 and rng is not None:
        pkt = 160
        npk = y.shape[-1] // pkt
        lost = rng.random(npk) < loss
        for i in np.flatnonzero(lost):
            if i == 0:
                continue
            y[..., i * pkt:(i + 1) * pkt] = y[..., (i - 1) * pkt:i * pkt] * 0.5
    return resample(y, 8000, sr)


def frame_rms(x: np.ndarray, frame: int = 512) -> np.ndarray:
    n = x.shape[-1] // frame
    f = x[..., : n * frame].reshape(x.shape[:-1] + (n, frame))
    return np.sqrt(np.mean(f * f, axis=-1) + 1e-12)
