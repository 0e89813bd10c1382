"""Receive side of an audio RTP stream: RFC 3550 A.1 sequence validation, interarrival jitter
(A.8), and an adaptive jitter buffer with packet-loss concealment. Sans-IO: `put()` is fed packets
with their arrival time, `pop()` is called once per 20 ms frame by the owner's media clock."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_DROPOUT, MAX_MISORDER, MIN_SEQUENTIAL = 3000, 100, 2
SEQ_MOD = 1 << 16


class SequenceTracker:
    """RFC 3550 appendix A.1: is this packet part of the stream, and what is its extended seq?"""

    def __init__(self) -> None:
        self.max_seq = 0
        self.cycles = 0
        self.base_seq = 0
        self.bad_seq = SEQ_MOD + 1
        self.probation = MIN_SEQUENTIAL
        self.received = 0
        self.started = False

    def _init(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = SEQ_MOD + 1
        self.cycles = 0
        self.received = 0

    def update(self, seq: int) -> bool:
        if not self.started:
            self._init(seq)
            self.max_seq = seq - 1
            self.started = True
        udelta = (seq - self.max_seq) % SEQ_MOD
        if self.probation:
            if seq == (self.max_seq + 1) % SEQ_MOD:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init(seq)
                    self.received += 1
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = seq
        elif udelta <= SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                self._init(seq)     # two sequential packets after a jump: the source restarted
            else:
                self.bad_seq = (seq + 1) % SEQ_MOD
                return False
        # else: duplicate or reordered packet, accepted
        self.received += 1
        return True

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)


@dataclass(frozen=True)
class JitterSettings:
    clock: int = 8000
    frame: int = 160              # samples per pop (20 ms)
    min_delay: float = 0.060      # target playout delay range
    max_delay: float = 0.080
    capacity: float = 1.0         # seconds of audio the ring holds
    skip_above: float = 0.060     # drop a frame when this much more than the target is buffered
    plc_frames: int = 3           # concealment fades to silence over this many frames
    drop_when_deep: bool = True   # False: the owner drains the excess (`excess()`) instead of dropping


class JitterBuffer:
    """Timestamp-indexed ring of decoded PCM16 samples."""

    def __init__(self, settings: JitterSettings = JitterSettings()):
        self.s = settings
        self.size = int(settings.capacity * settings.clock)
        self.ring = np.zeros(self.size, np.int16)
        self.filled = np.zeros(self.size, bool)
        self.play_ts: int | None = None     # next timestamp to play (unwrapped)
        self.high_ts: int | None = None     # end of the newest audio received (unwrapped)
        self.started = False
        self.jitter = 0.0                   # seconds, RFC 3550 A.8
        self._transit: float | None = None
        self._last_ts32: int | None = None
        self._unwrap = 0
        self._last_good = np.zeros(settings.frame, np.int16)
        self._concealed = 0
        self.stats = {"late": 0, "concealed": 0, "underrun": 0, "skipped": 0, "played": 0, "reset": 0}

    @property
    def target(self) -> float:
        return min(self.s.max_delay, self.s.min_delay + 2 * self.jitter)

    @property
    def depth(self) -> float:
        if self.play_ts is None or self.high_ts is None:
            return 0.0
        return max(0, self.high_ts - self.play_ts) / self.s.clock

    def reset(self) -> None:
        self.filled[:] = False
        self.play_ts = self.high_ts = None
        self.started = False
        self._transit = None
        self._last_ts32 = None
        self.stats["reset"] += 1

    def _unwrap_ts(self, ts: int) -> int:
        if self._last_ts32 is None:
            self._last_ts32 = self._unwrap = ts
            return ts
        d = (ts - self._last_ts32) % 2**32
        if d >= 2**31:
            d -= 2**32
        self._last_ts32 = ts
        self._unwrap += d
        return self._unwrap

    def put(self, timestamp: int, pcm: np.ndarray, arrival: float) -> bool:
        """Store decoded samples that start at RTP `timestamp`. False when dropped (late/too far)."""
        ts = self._unwrap_ts(timestamp)
        # interarrival jitter (RFC 3550 A.8), in seconds
        transit = arrival - ts / self.s.clock
        if self._transit is not None:
            self.jitter += (abs(transit - self._transit) - self.jitter) / 16
        self._transit = transit
        if self.play_ts is None:
            self.play_ts = ts
        if ts + len(pcm) <= self.play_ts and self.play_ts - ts < self.size:
            self.stats["late"] += 1
            return False
        if not 0 <= ts - self.play_ts + len(pcm) < self.size:
            # far ahead (a jump in timestamps): start over from this packet
            self.reset()
            self._last_ts32 = self._unwrap = ts = timestamp
            self.play_ts = ts
        start = max(ts, self.play_ts)
        data = pcm[start - ts:]
        for sl, part in self._slices(start, len(data)):
            self.ring[sl] = data[part]
            self.filled[sl] = True
        end = ts + len(pcm)
        self.high_ts = end if self.high_ts is None else max(self.high_ts, end)
        return True

    def pop(self) -> np.ndarray | None:
        """The next frame of samples; None before playout starts (the caller plays silence)."""
        if self.play_ts is None:
            return None
        depth, target = self.depth, self.target
        if not self.started:
            if depth < target:
                return None
            self.started = True
        n = self.s.frame
        if self.s.drop_when_deep and depth > target + self.s.skip_above:
            self._advance(self.play_ts, n)
            self.stats["skipped"] += 1
        ring, have = self._read(self.play_ts, n)
        if have.all():
            out = ring
            self._last_good = out
            self._concealed = 0
            self.stats["played"] += 1
        else:
            self.stats["concealed" if self.high_ts and self.high_ts > self.play_ts + n else "underrun"] += 1
            self._concealed += 1
            gain = max(0.0, 1.0 - self._concealed / (self.s.plc_frames + 1))
            fill = (self._last_good.astype(np.float32) * gain).astype(np.int16)
            out = np.where(have, ring, fill).astype(np.int16)
        self._advance(self.play_ts, n)
        return out

    def excess(self) -> bool:
        """More than the target plus `skip_above` is buffered (after a stall or a burst)."""
        return self.started and self.depth > self.target + self.s.skip_above

    def _slices(self, start: int, n: int) -> tuple[tuple[slice, slice], ...]:
        """(ring slice, data slice) pairs covering `n` samples from timestamp `start`."""
        i = start % self.size
        if i + n <= self.size:
            return ((slice(i, i + n), slice(0, n)),)
        k = self.size - i
        return ((slice(i, self.size), slice(0, k)), (slice(0, n - k), slice(k, n)))

    def _read(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        parts = self._slices(start, n)
        if len(parts) == 1:
            sl = parts[0][0]
            return self.ring[sl].copy(), self.filled[sl].copy()
        return (np.concatenate([self.ring[a] for a, _ in parts]),
                np.concatenate([self.filled[a] for a, _ in parts]))

    def _advance(self, start: int, n: int) -> None:
        """Playout moves past the `n` samples from `start` (the current `play_ts`)."""
        for sl, _ in self._slices(start, n):
            self.filled[sl] = False
        self.play_ts = start + n
