"""One admission controller per process, asked by every transport before a call gets media or TTS.

A new call is taken only while all three hold:

* fewer than `max_calls` calls hold a slot. The default follows what one process carries with the
  whole call path (VAD, turn-taking with words at every pause, ASR, TTS) within its latency
  targets: `CALLS_PER_2_CORES * cores / 2`. Measured with `duplexbot bench phone out/real-set3
  --mixed --repeat 3 --expect-digits` on a 2-core Xeon VM, 2026-12-04: 40 calls at once answered
  at p50 232 ms (20: 213 ms) with the server at 1.03 cores and no engine backlog, where the cap of
  20 it replaced refused 895 dials of the same run. (On 2026-12-01's box, half as fast per chunk,
  40 calls answered at p50 902 ms: on a slower machine the two rules below, not the cap, are what
  stops new calls);
  `DUPLEXBOT_MAX_CALLS` overrides it. Every call's media still goes through one event loop, so the
  default stops at `LOOP_CEILING` however many cores there are. (docs/sip.md measures ~250
  media-only SIP calls per process: RTP without the engine, not a capacity to admit calls at.)
* the event loop keeps up: the p90 of the loop delay measured every ~100 ms over the last
  `lag_window` seconds stays under `lag_bound`. A process that is already late refuses new calls
  even below the cap, so calls it has stay on time instead of all of them degrading; an idle one
  (no call holds a slot) takes the call whatever its loop did during start-up.
* the engine keeps up with real time: the call furthest behind has not had more than
  `backlog_bound` seconds of caller audio waiting for it for the whole last `backlog_window`
  seconds (a sustained backlog, not a spike: at 20 calls on two cores the worst call swings
  between 0.1 and 0.6 s, while an engine that cannot keep up falls further behind every second).
  The loop can answer on time while the engine falls behind (its calls wait on inference and
  recognition threads, not the loop): with 40 calls on two cores the loop's p90 stayed under
  30 ms while the engine processed ~0.6 s of audio per second, so every answer came seconds late;
  this rule stops taking calls first.

Sans-IO: every method is fed `now` (seconds, monotonic); `bot/engine/looplag.py` feeds the loop
delay and the runtime the worst call's backlog (its inbound mailbox's `held_seconds`). A slot is
held from `admit()` to `release()`. `admit(..., hold=s)` takes a slot that lapses after `s`
seconds unless the same call is admitted again without `hold` (Twilio: the webhook reserves, the
media stream takes the reservation; a stream that never comes frees it).
"""
from __future__ import annotations

import math
import os
from collections import Counter, deque
from dataclasses import dataclass

CALLS_PER_2_CORES = 40
LOOP_CEILING = 200     # one event loop moved ~250 media-only SIP calls (docs/sip.md): more cores do not lift this
REASONS = ("capacity", "loop_lag", "engine_lag")


def default_max_calls(cores: int | None = None) -> int:
    """`CALLS_PER_2_CORES` per two cores (at least one core's worth), at most `LOOP_CEILING`."""
    n = cores if cores is not None else (os.cpu_count() or 2)
    return min(LOOP_CEILING, CALLS_PER_2_CORES * max(1, n) // 2)


@dataclass(frozen=True)
class AdmissionSettings:
    max_calls: int = 0                 # 0: derived from the cores (`default_max_calls`)
    lag_bound: float = 0.150           # s of loop delay (p90 over the window) above which calls are refused
    lag_quantile: float = 0.9
    lag_window: float = 5.0            # s of lag samples the rule looks at
    lag_min_samples: int = 5           # fewer samples than this in the window: the rule does not apply
    # the engine-lag rule: caller audio waiting for the engine on the worst call (its inbound
    # mailbox), the least over the last `backlog_window` s (sustained). Above `backlog_bound` the
    # engine is not keeping up with real time (measured: 40 calls on two cores processed ~0.6 s of
    # audio per second while the loop itself answered within 30 ms), and every answer comes late
    backlog_bound: float = 0.5
    backlog_window: float = 1.0
    backlog_min_samples: int = 5  # fewer samples in the window: the rule does not apply
    retry_after: int = 5               # s, told to refused callers (SIP Retry-After, HTTP Retry-After)
    overflow_number: str = ""          # Twilio: refused calls are dialled here instead of rejected as busy

    def __post_init__(self) -> None:
        if self.max_calls < 0:
            raise ValueError(f"max_calls must be >= 0 (0: derived), got {self.max_calls}")
        if not 0 < self.lag_bound:
            raise ValueError(f"lag_bound must be > 0 s, got {self.lag_bound}")
        if not 0 < self.backlog_bound or not 0 < self.backlog_window:
            raise ValueError(f"backlog_bound and backlog_window must be > 0 s, got {self.backlog_bound}, "
                             f"{self.backlog_window}")
        if not 0 < self.lag_quantile <= 1:
            raise ValueError(f"lag_quantile must be in (0, 1], got {self.lag_quantile}")
        if self.retry_after < 1:
            raise ValueError(f"retry_after must be >= 1 s, got {self.retry_after}")

    @property
    def cap(self) -> int:
        return self.max_calls or default_max_calls()


@dataclass(frozen=True)
class Decision:
    admitted: bool
    reason: str = "ok"                 # ok | capacity | loop_lag | engine_lag
    retry_after: int = 0               # s; 0 when admitted


class AdmissionController:
    def __init__(self, settings: AdmissionSettings = AdmissionSettings()) -> None:
        self.settings = settings
        self.cap = settings.cap
        self._slots: dict[tuple[str, str], float | None] = {}   # (transport, call id) -> lapses at (None: held)
        self._lag: deque[tuple[float, float]] = deque()          # (when, loop delay s)
        self._backlog: deque[tuple[float, float]] = deque()      # (when, worst call's backlog s)
        self.admitted: Counter[str] = Counter()                  # by transport
        self.refused: Counter[tuple[str, str]] = Counter()       # by (transport, reason)

    # -- decisions ---------------------------------------------------------------------------------
    def admit(self, call_id: str, transport: str, now: float, hold: float | None = None) -> Decision:
        self._lapse(now)
        key = (transport, call_id)
        if key in self._slots:        # the call holds a slot already (a reservation being taken up)
            current = self._slots[key]
            self._slots[key] = None if hold is None or current is None else max(current, now + hold)
            return Decision(True)
        if len(self._slots) >= self.cap:
            return self._refuse(transport, "capacity")
        # a late loop with no call on it is not late because of calls (start-up, a neighbour's
        # work): refusing the first call would help nobody, so the rule needs calls to protect
        if self._slots and self.lagging(now):
            return self._refuse(transport, "loop_lag")
        if self._slots and self.behind(now):
            return self._refuse(transport, "engine_lag")
        self._slots[key] = None if hold is None else now + hold
        self.admitted[transport] += 1
        return Decision(True)

    def release(self, call_id: str, transport: str) -> None:
        self._slots.pop((transport, call_id), None)

    def holds(self, call_id: str, transport: str, now: float) -> bool:
        self._lapse(now)
        return (transport, call_id) in self._slots

    def _refuse(self, transport: str, reason: str) -> Decision:
        self.refused[(transport, reason)] += 1
        return Decision(False, reason, self.settings.retry_after)

    def _lapse(self, now: float) -> None:
        gone = [k for k, until in self._slots.items() if until is not None and until <= now]
        for k in gone:
            del self._slots[k]

    # -- the loop-lag rule -------------------------------------------------------------------------
    def record_lag(self, lag: float, now: float) -> None:
        self._lag.append((now, max(0.0, lag)))
        self._trim(now)

    def lag_quantile(self, now: float) -> float | None:
        """The configured quantile of the loop delay over the window (None: too few samples)."""
        self._trim(now)
        if len(self._lag) < self.settings.lag_min_samples:
            return None
        xs = sorted(lag for _, lag in self._lag)
        return xs[min(len(xs) - 1, math.ceil(self.settings.lag_quantile * len(xs)) - 1)]

    def lagging(self, now: float) -> bool:
        q = self.lag_quantile(now)
        return q is not None and q > self.settings.lag_bound

    def _trim(self, now: float) -> None:
        _drop_before(self._lag, now - self.settings.lag_window)

    # -- the engine-lag rule -----------------------------------------------------------------------
    def record_backlog(self, seconds: float, now: float) -> None:
        """The caller audio (s) waiting for the engine on the call furthest behind, sampled now."""
        self._backlog.append((now, max(0.0, seconds)))
        _drop_before(self._backlog, now - self.settings.backlog_window)

    def backlog(self, now: float) -> float:
        """The worst call's backlog sustained over the window: the least of its samples (s); 0.0
        with fewer than `backlog_min_samples` samples."""
        start = now - self.settings.backlog_window
        xs = [b for t, b in self._backlog if t >= start]
        return min(xs) if len(xs) >= self.settings.backlog_min_samples else 0.0

    def behind(self, now: float) -> bool:
        return self.backlog(now) > self.settings.backlog_bound

    # -- numbers -----------------------------------------------------------------------------------
    def live(self, now: float) -> int:
        self._lapse(now)
        return len(self._slots)

    def last_lag(self) -> float:
        return self._lag[-1][1] if self._lag else 0.0


def _drop_before(samples: deque[tuple[float, float]], start: float) -> None:
    """Drop the (when, value) samples older than `start` (oldest first)."""
    while samples and samples[0][0] < start:
        samples.popleft()


__all__ = ["AdmissionController", "AdmissionSettings", "Decision", "CALLS_PER_2_CORES", "LOOP_CEILING", "REASONS",
           "default_max_calls"]
