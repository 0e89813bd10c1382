"""The last few seconds of one audio stream, kept for later reads by stream position.

A call keeps its caller's audio this way (each 32 ms chunk pushed as it is processed; ASR later
reads a pause's utterance or an overlap by stream seconds), and the bot's audio as the caller heard
it (the echo reference the duplex model reads chunk by chunk, by absolute 16 kHz sample). A fixed
ring of int16 samples: memory is bounded whatever the call's length, a read costs the same however
far back it reaches (an engine that has fallen behind reads further back), and what is older than
the ring, or not yet pushed, reads as silence.
"""
from __future__ import annotations

import numpy as np


class AudioHistory:
    def __init__(self, seconds: float, rate: int):
        self.rate = rate
        self._ring = np.zeros(max(1, int(seconds * rate)), np.int16)
        self.samples = 0  # samples pushed (or skipped) since the stream began: the next one's index

    def push(self, pcm: np.ndarray) -> int:
        """Append int16 samples; returns the stream index of the first."""
        start = self.samples
        keep = pcm[-len(self._ring):]  # a push longer than the ring keeps its newest samples
        self._put(start + len(pcm) - len(keep), keep)
        self.samples += len(pcm)
        return start

    def skip(self, n: int) -> None:
        """`n` samples of silence (nothing was heard meanwhile)."""
        if n <= 0:
            return
        if n >= len(self._ring):
            self._ring[:] = 0
        else:
            self._put(self.samples, np.zeros(n, np.int16))
        self.samples += n

    def rewind(self, to: int) -> None:
        """Forget what was pushed from stream index `to` on: the next push lands there (what follows
        reads as silence until then)."""
        self.samples = max(0, min(to, self.samples))

    def read(self, start: int, n: int) -> np.ndarray:
        """int16 samples [start, start + n); zeros where nothing is kept."""
        out = np.zeros(max(0, n), np.int16)
        lo, hi = self._kept(start, start + n)
        if hi > lo:
            out[lo - start:hi - start] = self._get(lo, hi)
        return out

    def window(self, t0: float, t1: float) -> np.ndarray:
        """float32 audio between stream seconds t0 and t1, clipped to what is kept."""
        a, b = self._kept(int(t0 * self.rate), int(t1 * self.rate))
        if b <= a:
            return np.zeros(0, np.float32)
        return self._get(a, b).astype(np.float32) / 32768.0

    def _kept(self, a: int, b: int) -> tuple[int, int]:
        """[a, b) clipped to the samples the ring still holds (empty when b <= a after it)."""
        return max(a, self.samples - len(self._ring), 0), min(b, self.samples)

    # at most two slices of the ring: no per-sample index arrays
    def _put(self, at: int, pcm: np.ndarray) -> None:
        size, i = len(self._ring), at % len(self._ring)
        first = min(len(pcm), size - i)
        self._ring[i:i + first] = pcm[:first]
        self._ring[:len(pcm) - first] = pcm[first:]

    def _get(self, a: int, b: int) -> np.ndarray:
        size, i = len(self._ring), a % len(self._ring)
        first = min(b - a, size - i)
        if first == b - a:
            return self._ring[i:i + first].copy()
        return np.concatenate([self._ring[i:], self._ring[:b - a - first]])
