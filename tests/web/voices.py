"""Caller audio for the web tests, rendered once per session with hibari TTS (offline)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from bot.audio import resample, write_wav


@lru_cache(maxsize=8)
def say(text: str, rate: int = 48000) -> np.ndarray:
    """float32 mono speech at `rate`."""
    tts = _engine()
    audio = np.asarray(tts(text), np.float32).reshape(-1)
    return resample(audio, tts.sample_rate, rate) if tts.sample_rate != rate else audio


@lru_cache(maxsize=1)
def _engine():
    from hibari import Hibari

    return Hibari()


def wav_file(path: Path, parts: list[tuple[str, float]], rate: int = 48000) -> Path:
    """A WAV of speech and silences: parts are (text, seconds of silence after it); text "" is silence only."""
    chunks = []
    for text, pause in parts:
        if text:
            chunks.append(say(text, rate))
        chunks.append(np.zeros(int(pause * rate), np.float32))
    write_wav(path, np.concatenate(chunks), rate)
    return path
