"""Load shedding for new calls: a concurrent-call cap and a calls-per-second token bucket."""
from __future__ import annotations


class CallLimiter:
    """`admit(active, now)` is False when a new call must be answered 503 with Retry-After."""

    def __init__(self, max_calls: int, max_cps: float, burst: float | None = None):
        self.max_calls = max_calls
        self.max_cps = max_cps
        self.burst = burst if burst is not None else max(1.0, max_cps)
        self._tokens = self.burst
        self._last: float | None = None
        self.active = 0
        self.shed = 0

    def admit(self, active: int, now: float) -> bool:
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.max_cps)
        self._last = now
        if active >= self.max_calls or self._tokens < 1.0:
            self.shed += 1
            return False
        return True

    def started(self, now: float) -> None:
        self._tokens -= 1.0
        self.active += 1

    def ended(self) -> None:
        self.active = max(0, self.active - 1)
