"""A bounded FIFO of PCM16 samples: push chunks, pull exactly n samples (zero-filled when short).
When full, the oldest audio goes first: a live feed prefers fresh sound to late sound."""
from __future__ import annotations

from collections import deque

import numpy as np


class SampleFifo:
    def __init__(self, max_samples: int):
        self.max_samples = max_samples
        self._chunks: deque[np.ndarray] = deque()
        self.held = 0
        self.dropped = 0  # samples dropped because the FIFO was full

    def push(self, pcm: np.ndarray) -> None:
        if len(pcm) == 0:
            return
        self._chunks.append(pcm)
        self.held += len(pcm)
        while self.held > self.max_samples and self._chunks:
            old = self._chunks.popleft()
            self.held -= len(old)
            self.dropped += len(old)

    def pull(self, samples: int) -> tuple[np.ndarray, int]:
        """`samples` int16 samples (zeros past what was held) and how many were real audio."""
        out = np.zeros(samples, np.int16)
        pos = 0
        while pos < samples and self._chunks:
            chunk = self._chunks[0]
            take = min(samples - pos, len(chunk))
            out[pos:pos + take] = chunk[:take]
            pos += take
            if take == len(chunk):
                self._chunks.popleft()
            else:
                self._chunks[0] = chunk[take:]
        self.held -= pos
        return out, pos
