"""Turn-taking metrics in the style of Sesame's TurnBench.

A decision detects an event when it falls within [-0.25 s, +3.0 s] of it; each decision counts
once. End of turn: recall, false-positive rate over holds (a pause inside a caller turn counts at
most once), latency p10/p50/p90 of the detections. Barge-in: interruption recall, false-stop rate
on backchannels/noise over bot speech, stop latency p50/p90.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .dataset import Labels

BEFORE = 0.25
AFTER = 3.0


@dataclass
class Scores:
    duration: float = 0.0
    eot_total: int = 0
    eot_latencies: list[float] = field(default_factory=list)
    holds_total: int = 0
    holds_fp: int = 0
    eot_spurious: int = 0
    int_total: int = 0
    stop_latencies: list[float] = field(default_factory=list)
    bc_total: int = 0
    bc_false_stops: int = 0
    int_spurious: int = 0

    def add(self, o: "Scores") -> "Scores":
        for k, v in vars(o).items():
            setattr(self, k, getattr(self, k) + v)
        return self


def _first_in(times: list[float], used: list[bool], lo: float, hi: float) -> int | None:
    for i, t in enumerate(times):
        if not used[i] and lo - 1e-9 <= t <= hi + 1e-9:
            return i
    return None


def score(labels: Labels, eot_times: list[float], stop_times: list[float], duration: float = 0.0) -> Scores:
    """eot_times: times of end_of_turn decisions; stop_times: times of interrupt decisions."""
    s = Scores(duration=duration)
    eots = sorted(eot_times)
    used = [False] * len(eots)
    s.holds_total = len(labels.hold)
    for t0, t1 in labels.hold:
        hit = False
        for i, t in enumerate(eots):
            if not used[i] and t0 - 1e-9 <= t <= t1 + 1e-9:
                used[i] = True
                hit = True
        s.holds_fp += hit
    s.eot_total = len(labels.eot)
    for e in labels.eot:
        m = _first_in(eots, used, e - BEFORE, e + AFTER)
        if m is not None:
            used[m] = True
            s.eot_latencies.append(eots[m] - e)
    s.eot_spurious = used.count(False)

    stops = sorted(stop_times)
    used = [False] * len(stops)
    s.int_total = len(labels.interruption)
    for o in labels.interruption:
        m = _first_in(stops, used, o - BEFORE, o + AFTER)
        if m is not None:
            used[m] = True
            s.stop_latencies.append(stops[m] - o)
    s.bc_total = len(labels.backchannel)
    for b in labels.backchannel:
        later = [o for o in labels.interruption if o > b]
        hi = min(b + AFTER, (later[0] - BEFORE) if later else b + AFTER)
        hit = False
        while (m := _first_in(stops, used, b - BEFORE, hi)) is not None:
            used[m] = True
            hit = True
        s.bc_false_stops += hit
    s.int_spurious = used.count(False)
    return s


def _pct(xs: list[float], q: float) -> float | None:
    return None if not xs else round(float(np.percentile(xs, q)), 3)


def _ratio(a: int, b: int) -> float | None:
    return None if b == 0 else round(a / b, 4)


def summary(s: Scores) -> dict:
    minutes = s.duration / 60 if s.duration else 0.0
    return {
        "eot_recall": _ratio(len(s.eot_latencies), s.eot_total),
        "eot_fp_rate": _ratio(s.holds_fp, s.holds_total),
        "eot_latency_p10": _pct(s.eot_latencies, 10),
        "eot_latency_p50": _pct(s.eot_latencies, 50),
        "eot_latency_p90": _pct(s.eot_latencies, 90),
        "eot_spurious_per_min": round(s.eot_spurious / minutes, 3) if minutes else None,
        "interruption_recall": _ratio(len(s.stop_latencies), s.int_total),
        "false_stop_rate": _ratio(s.bc_false_stops, s.bc_total),
        "stop_latency_p50": _pct(s.stop_latencies, 50),
        "stop_latency_p90": _pct(s.stop_latencies, 90),
        "stop_spurious_per_min": round(s.int_spurious / minutes, 3) if minutes else None,
        "counts": {"eot": s.eot_total, "hold": s.holds_total, "interruption": s.int_total,
                   "backchannel": s.bc_total, "minutes": round(minutes, 2)},
    }
