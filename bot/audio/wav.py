"""WAV files in and out (PCM 16-bit, 8-bit, 24-bit, 32-bit int, any rate and channel count)."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


class AudioFileError(ValueError):
    """The file cannot be used as audio; the message names the file and the reason."""


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Returns float32 samples shaped [channels, n] in [-1, 1] and the sample rate."""
    p = Path(path)
    if not p.is_file():
        raise AudioFileError(f"{p}: no such file")
    try:
        with wave.open(str(p), "rb") as w:
            ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError, OSError) as e:
        raise AudioFileError(f"{p}: not a readable PCM WAV file ({e})") from None
    if ch < 1 or rate <= 0:
        raise AudioFileError(f"{p}: bad header (channels={ch}, rate={rate})")
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        data = v.astype(np.float32) / float(1 << 23)
    elif width == 4:
        data = np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
    else:
        raise AudioFileError(f"{p}: unsupported sample width {width * 8} bits")
    usable = len(data) - len(data) % ch
    return np.ascontiguousarray(data[:usable].reshape(-1, ch).T), rate


def write_wav(path: str | Path, audio: np.ndarray, rate: int) -> None:
    """`audio`: float [n] or [channels, n] in [-1, 1], or int16; written as 16-bit PCM."""
    a = np.asarray(audio)
    if a.ndim == 1:
        a = a[None, :]
    if a.dtype != np.int16:
        a = (np.clip(a, -1.0, 1.0) * 32767.0).astype(np.int16)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(a.shape[0])
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(np.ascontiguousarray(a.T).astype("<i2").tobytes())
