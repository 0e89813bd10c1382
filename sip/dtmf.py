"""RFC 4733 telephone events (DTMF): payload parse/write, a receiver that reports each key press
once (end packets are sent three times), and a sender that yields the packets of one key press;
and the same key presses signalled in SIP INFO (`dtmf_from_info`)."""
from __future__ import annotations

import struct
from dataclasses import dataclass

from .message import Request

DIGITS = "0123456789*#ABCD"


@dataclass(frozen=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int
    duration: int   # in RTP timestamp units

    @classmethod
    def parse(cls, payload: bytes) -> "TelephoneEvent":
        if len(payload) < 4:
            raise ValueError(f"telephone-event payload of {len(payload)} bytes (needs 4)")
        ev, flags, dur = struct.unpack_from("!BBH", payload)
        return cls(ev, bool(flags & 0x80), flags & 0x3F, dur)

    def __bytes__(self) -> bytes:
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | (self.volume & 0x3F),
                           self.duration & 0xFFFF)

    @property
    def digit(self) -> str | None:
        return DIGITS[self.event] if self.event < len(DIGITS) else None


class DtmfReceiver:
    """Feed (rtp timestamp, payload); returns (digit, duration_ms) once per key press."""

    def __init__(self, clock: int = 8000):
        self.clock = clock
        self._current: tuple[int, int] | None = None   # (timestamp, event) being received
        self._reported: set[int] = set()
        self._last_duration = 0

    def feed(self, timestamp: int, payload: bytes) -> tuple[str, int] | None:
        ev = TelephoneEvent.parse(payload)
        out = None
        if self._current is not None and self._current[0] != timestamp and self._current[0] not in self._reported:
            # a new event began without the end of the previous one: report the previous now
            out = self._report(self._current, self._last_duration)
        self._current = (timestamp, ev.event)
        self._last_duration = ev.duration
        if ev.end and timestamp not in self._reported:
            out = self._report(self._current, ev.duration) or out
        if len(self._reported) > 64:
            self._reported = {t for t in self._reported if (t - timestamp) % 2**32 < 2**31}
        return out

    def _report(self, cur: tuple[int, int], duration: int) -> tuple[str, int] | None:
        self._reported.add(cur[0])
        digit = DIGITS[cur[1]] if cur[1] < len(DIGITS) else None
        return (digit, duration * 1000 // self.clock) if digit else None


def event_packets(digit: str, duration_ms: int = 160, volume: int = 10, clock: int = 8000,
                  step_ms: int = 20) -> list[tuple[bytes, bool]]:
    """(payload, marker) for one key press: updates every `step_ms`, then the end packet three times.
    All share the RTP timestamp of the event start (the caller applies it)."""
    if digit.upper() not in DIGITS:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    code = DIGITS.index(digit.upper())
    out = []
    steps = max(1, duration_ms // step_ms)
    for i in range(1, steps + 1):
        dur = min(i * step_ms * clock // 1000, 0xFFFF)
        out.append((bytes(TelephoneEvent(code, False, volume, dur)), i == 1))
    end = bytes(TelephoneEvent(code, True, volume, min(steps * step_ms * clock // 1000, 0xFFFF)))
    out += [(end, False)] * 3
    return out


def dtmf_from_info(req: Request) -> tuple[str, int] | None:
    """(digit, duration ms) from an INFO body: application/dtmf-relay ("Signal=5\r\nDuration=160")
    or application/dtmf ("5")."""
    kind = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    text = req.body.decode("ascii", "replace")
    if kind == "application/dtmf-relay":
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition("=") for line in text.splitlines())}
        digit, dur = fields.get("signal", ""), fields.get("duration", "")
    elif kind == "application/dtmf":
        digit, dur = text.strip(), ""
    else:
        return None
    if len(digit) != 1 or digit.upper() not in DIGITS:
        return None
    return digit.upper(), int(dur) if dur.isdigit() else 0
