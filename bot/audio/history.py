"""The last few seconds of one audio stream, kept for later reads by stream time.

A call keeps its caller's audio this way: each 32 ms chunk is pushed as it is processed, and ASR
later reads any window of it (a pause's utterance, an overlap) by stream seconds. A fixed ring of
int16 samples: memory per call is bounded whatever the call's length, and a window older than the
ring is clipped to what is kept.
"""
from __future__ import annotations

import numpy as np


class AudioHistory:
    def __init__(self, seconds: float, rate: int):
        self.rate = rate
        self._ring = np.zeros(max(1, int(seconds * rate)), np.int16)
        self.samples = 0  # samples pushed since the stream began

    def push(self, pcm: np.ndarray) -> int:
        """Append int16 samples; returns the stream index of the first."""
        start, n = self.samples, len(self._ring)
        keep = pcm[-n:]  # a push longer than the ring keeps its newest samples
        self._ring[(start + len(pcm) - len(keep) + np.arange(len(keep))) % n] = keep
        self.samples += len(pcm)
        return start

    def window(self, t0: float, t1: float) -> np.ndarray:
        """float32 audio between stream seconds t0 and t1, clipped to what is kept."""
        n = len(self._ring)
        a = max(int(t0 * self.rate), self.samples - n, 0)
        b = min(int(t1 * self.rate), self.samples)
        if b <= a:
            return np.zeros(0, np.float32)
        return self._ring[np.arange(a, b) % n].astype(np.float32) / 32768.0
