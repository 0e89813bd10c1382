"""Listening in: both sides of a call mixed and sent to a supervisor's browser.

Each listener has its own `ListenFeed`, registered as an audio tap on the session. The tap is
called by the engine every 32 ms (one chunk) with (caller, bot) frames at 16 kHz; it mixes them and appends to
a bounded buffer, dropping the oldest audio when the listener's connection does not keep up. It
never blocks and never waits for the network, so listeners cannot change the call's timing.
`ListenTrack` is the outgoing WebRTC track that drains the feed at real-time pace.
"""
from __future__ import annotations

import numpy as np

from ..audio.fifo import SampleFifo
from ..audio.frame import AudioFrame
from ..transports.webrtc import PacedAudioTrack

RATE = 16000


class ListenFeed:
    def __init__(self, max_seconds: float = 0.2, prebuffer_seconds: float = 0.04) -> None:
        self.max_samples = int(max_seconds * RATE)
        self.prebuffer = int(prebuffer_seconds * RATE)
        self._fifo = SampleFifo(self.max_samples)
        self._playing = False
        self.frames_in = 0
        self.underruns = 0
        self.level = 0  # peak of the last mixed frame (for the console's meter)

    def __call__(self, caller: AudioFrame, bot: AudioFrame) -> None:
        """The session's audio tap: cheap, never blocks."""
        a, b = _at_rate(caller), _at_rate(bot)
        n = max(len(a), len(b))
        mix = np.zeros(n, np.int32)
        mix[:len(a)] += a
        mix[:len(b)] += b
        pcm = np.clip(mix, -32768, 32767).astype(np.int16)
        self.level = int(np.abs(mix).max()) if n else 0
        self.frames_in += 1
        self._fifo.push(pcm)

    @property
    def dropped_samples(self) -> int:
        return self._fifo.dropped

    @property
    def held_seconds(self) -> float:
        return self._fifo.held / RATE

    def pull(self, samples: int) -> np.ndarray:
        if not self._playing:
            if self._fifo.held < max(self.prebuffer, samples):
                return np.zeros(samples, np.int16)
            self._playing = True
        out, pos = self._fifo.pull(samples)
        if pos < samples:
            self.underruns += 1
            self._playing = False
        return out


def _at_rate(frame: AudioFrame) -> np.ndarray:
    """Tap frames are 16 kHz by contract; anything else is stretched nearest-sample (cheap)."""
    if frame.sample_rate == RATE or not frame.samples:
        return frame.pcm
    m = frame.samples * RATE // frame.sample_rate
    idx = np.minimum(np.arange(m) * frame.sample_rate // RATE, frame.samples - 1)
    return frame.pcm[idx]


class ListenTrack(PacedAudioTrack):
    def __init__(self, feed: ListenFeed) -> None:
        super().__init__(RATE)
        self.feed = feed

    def next_samples(self, samples: int, rate: int) -> np.ndarray:
        return self.feed.pull(samples)
