"""The pacer of an outgoing media stream: when each fixed-length frame is due, and the one rule for
running late.

Sans-IO: fed the current time (monotonic seconds), it says how many frames are due and when the
next one is; the edge sleeps, produces them and calls `advance()` for each. It lives in `sip`
because `sip` never imports `bot` while `bot` may import `sip`: the pacers of bot audio (the
Twilio stream core, the WebRTC track) and the SIP media clock can all share it.

Frame n plays at `origin + n * period` and is due `ahead` seconds before that (Twilio is sent its
lead ahead of playback; RTP and WebRTC frames are produced when they play, `ahead = 0`).

The lateness rule (`MAX_LATE`, 100 ms = 5 frames of 20 ms). A frame due at most `MAX_LATE` ago is
still produced: the frames a short stall held back go out back to back, and the peer's jitter buffer
(RTP, WebRTC) or Twilio's playback buffer absorbs them. Past `MAX_LATE` the pacer resynchronises
instead of bursting: the schedule restarts with the next frame playing now, the frames whose time
passed are not produced (`skipped` counts them, `resyncs` the events; a path with timestamps may
leave that gap in them), and the peer hears one gap rather than us running late from then on.
100 ms is what the peers' buffers hold (Twilio's default lead, a WebRTC jitter buffer's target);
audio later than that would be played late or thrown away by them anyway.
"""
from __future__ import annotations

import math

MAX_LATE = 0.1  # seconds a frame may be produced after it was due before the pacer resynchronises


class Pacer:
    def __init__(self, period: float, ahead: float = 0.0, max_late: float = MAX_LATE) -> None:
        if period <= 0 or ahead < 0 or max_late < 0:
            raise ValueError(f"pacer needs period > 0, ahead >= 0, max_late >= 0 (got {period}, {ahead}, {max_late})")
        self.period = period
        self.ahead = ahead
        self.max_late = max_late
        self._next: float | None = None  # when the next frame plays
        self.frames = 0  # frames produced
        self.resyncs = 0  # times the pacer fell more than max_late behind and restarted
        self.skipped = 0  # frames whose time passed at those resyncs

    @property
    def started(self) -> bool:
        return self._next is not None

    def restart(self, now: float) -> None:
        """The next frame plays at `now` (the start of a stream, or after the peer's buffer was emptied)."""
        self._next = now

    def playout(self) -> float:
        """When the next frame plays (the end of what was produced so far). The pacer must be started."""
        if self._next is None:
            raise RuntimeError("the pacer has not started")
        return self._next

    def deadline(self) -> float:
        """When the next frame is due. The pacer must be started."""
        return self.playout() - self.ahead

    def due(self, now: float) -> int:
        """How many frames are due at `now`, after applying the lateness rule (the first call starts
        the schedule: the next frame plays now)."""
        if self._next is None:
            self._next = now
        late = now - (self._next - self.ahead)
        if late > self.max_late:
            self.resyncs += 1
            self.skipped += int(late / self.period)
            self._next = now
            late = self.ahead  # the next frame plays now: due `ahead` ago
        return max(0, math.floor(late / self.period + 1e-9) + 1)

    def wait(self, now: float) -> float:
        """Seconds from `now` until the next frame is due (0: due now, or not started)."""
        return 0.0 if self._next is None else max(0.0, self._next - self.ahead - now)

    def advance(self) -> None:
        """One frame was produced."""
        if self._next is None:
            raise RuntimeError("the pacer has not started")
        self._next += self.period
        self.frames += 1
