"""An audio frame: mono 16-bit PCM with its sample rate and stream timestamp."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUPPORTED_RATES = (8000, 16000, 22050, 24000, 48000)


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """Mono int16 samples. `timestamp` is seconds of stream time at the first sample."""

    pcm: np.ndarray
    sample_rate: int
    timestamp: float = 0.0

    def __post_init__(self) -> None:
        if self.sample_rate not in SUPPORTED_RATES:
            raise ValueError(f"unsupported sample rate {self.sample_rate} Hz (supported: {SUPPORTED_RATES})")
        if self.pcm.dtype != np.int16 or self.pcm.ndim != 1:
            raise ValueError(f"AudioFrame needs 1-D int16 samples, got {self.pcm.dtype} with shape {self.pcm.shape}")

    @property
    def samples(self) -> int:
        return int(self.pcm.shape[0])

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate

    @property
    def end(self) -> float:
        return self.timestamp + self.duration

    @classmethod
    def silence(cls, sample_rate: int, samples: int, timestamp: float = 0.0) -> "AudioFrame":
        return cls(np.zeros(samples, np.int16), sample_rate, timestamp)

    @classmethod
    def from_float(cls, audio: np.ndarray, sample_rate: int, timestamp: float = 0.0) -> "AudioFrame":
        return cls(float_to_pcm16(audio), sample_rate, timestamp)

    def to_float(self) -> np.ndarray:
        return pcm16_to_float(self.pcm)

    def __bytes__(self) -> bytes:
        return self.pcm.astype("<i2", copy=False).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, sample_rate: int, timestamp: float = 0.0) -> "AudioFrame":
        if len(data) % 2:
            raise ValueError(f"PCM16 payload has an odd length ({len(data)} bytes)")
        return cls(np.frombuffer(data, "<i2").astype(np.int16), sample_rate, timestamp)


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(audio, np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / 32768.0
