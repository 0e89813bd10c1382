"""Load shedding for new calls, sans-IO.

`CallAdmission` is what the SIP core asks before it takes a call: the owner of the process passes
its own (duplexbot's one controller for every transport, bot/engine/admission.py) through a small
interface, because `sip` never imports `bot`. `LocalCap` is the stand-alone answer: a plain
concurrent-call cap. `CallRate` is a calls-per-second token bucket the core applies on top, a
signalling guard of its own."""
from __future__ import annotations

from typing import Protocol


class CallAdmission(Protocol):
    def admit(self, call_id: str, now: float) -> int | None:
        """None: the call is taken and holds a slot until `release`; else refuse it with 503 and this
        Retry-After (seconds)."""

    def release(self, call_id: str) -> None:
        """The call is over (answered or not); its slot is free."""


class LocalCap:
    """At most `max_calls` calls at once (sip used without duplexbot's controller)."""

    def __init__(self, max_calls: int, retry_after: int) -> None:
        self.max_calls = max_calls
        self.retry_after = retry_after
        self._live: set[str] = set()

    def admit(self, call_id: str, now: float) -> int | None:
        if len(self._live) >= self.max_calls:
            return self.retry_after
        self._live.add(call_id)
        return None

    def release(self, call_id: str) -> None:
        self._live.discard(call_id)

    @property
    def active(self) -> int:
        return len(self._live)


class CallRate:
    """New calls per second (token bucket of `burst`, refilled at `max_cps`)."""

    def __init__(self, max_cps: float, burst: float | None = None) -> None:
        self.max_cps = max_cps
        self.burst = burst if burst is not None else max(1.0, max_cps)
        self._tokens = self.burst
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.max_cps)
        self._last = now
        return self._tokens >= 1.0

    def took(self) -> None:
        self._tokens -= 1.0


class HeldWhileHandled:
    """Wraps a `CallAdmission` so that a call's slot is freed only once both its signalling has
    ended (the core's `release`) and the application is done with it (`handler_done`): a call the
    engine is still winding down is still using the process."""

    def __init__(self, inner: CallAdmission) -> None:
        self.inner = inner
        self._handling: set[str] = set()
        self._released: set[str] = set()

    def admit(self, call_id: str, now: float) -> int | None:
        return self.inner.admit(call_id, now)

    def release(self, call_id: str) -> None:
        if call_id in self._handling:
            self._released.add(call_id)
        else:
            self.inner.release(call_id)

    def handler_started(self, call_id: str) -> None:
        self._handling.add(call_id)

    def handler_done(self, call_id: str) -> None:
        self._handling.discard(call_id)
        if call_id in self._released:
            self._released.discard(call_id)
            self.inner.release(call_id)
