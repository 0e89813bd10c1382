"""Call metrics measured where the caller sits: from the true edges of the caller's speech (known
exactly, since the simulator produced it) to the bot audio the caller received."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import events as ev

WIN = 0.01  # 10 ms analysis windows
SPEECH_DB = -45.0  # window RMS above this (dBFS) counts as sound
BOT_RMS = 0.004
FILLERS = frozenset("sure okay ok so well alright right um uh hmm yes yeah of course".split())


@dataclass(frozen=True)
class CallerSegment:
    onset: float  # stream seconds of the first audible sample
    offset: float  # stream seconds of the last audible sample
    kind: str
    text: str
    bot_speaking: bool  # the bot was talking when the caller started this segment

    @classmethod
    def from_audio(cls, audio: np.ndarray, start: float, kind: str, text: str, bot_speaking: bool) -> "CallerSegment":
        w = int(WIN * 16000)
        n = len(audio) // w
        if n == 0:
            return cls(start, start, kind, text, bot_speaking)
        rms = np.sqrt(np.mean(audio[: n * w].reshape(n, w) ** 2, axis=1) + 1e-12)
        loud = np.nonzero(20 * np.log10(rms) > SPEECH_DB)[0]
        if loud.size == 0:
            return cls(start, start, kind, text, bot_speaking)
        return cls(start + loud[0] * WIN, start + (loud[-1] + 1) * WIN, kind, text, bot_speaking)


def _voiced(bot: np.ndarray, rate: int) -> np.ndarray:
    w = int(WIN * rate)
    n = len(bot) // w
    return np.sqrt(np.mean(bot[: n * w].reshape(n, w) ** 2, axis=1)) > BOT_RMS if n else np.zeros(0, bool)


def _pct(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(xs, q)), 4) if xs else None


def _measured(rows: list[dict[str, object]], key: str) -> list[float]:
    """The rows' `key` values that were measured (None: never happened)."""
    return [v for r in rows if isinstance(v := r[key], float)]


def compute_metrics(segments: list[CallerSegment], bot: np.ndarray, rate: int,
                    events: list[ev.Event]) -> dict[str, Any]:
    voiced = _voiced(bot, rate)
    times = np.arange(len(voiced)) * WIN

    def first_voiced_after(t: float, limit: float) -> float | None:
        idx = np.nonzero(voiced & (times >= t) & (times <= t + limit))[0]
        return float(times[idx[0]]) if idx.size else None

    def stop_after(t: float, quiet: float = 0.3) -> float | None:
        """Start of the first run of >= `quiet` s of bot silence after t."""
        need = int(quiet / WIN)
        i0 = int(t / WIN)
        run = 0
        for i in range(i0, len(voiced)):
            run = 0 if voiced[i] else run + 1
            if run >= need:
                return float((i - need + 1) * WIN)
        return None

    starts = [e for e in events if isinstance(e, ev.BotSpeechStart)]
    barge = [e for e in events if isinstance(e, ev.BargeIn)]
    turns: list[dict[str, object]] = []
    stops: list[dict[str, object]] = []
    false_barge, missed_barge = 0, 0
    for k, seg in enumerate(segments):
        nxt = segments[k + 1].onset if k + 1 < len(segments) else float("inf")
        if seg.kind == "turn" and not seg.bot_speaking:
            first = first_voiced_after(seg.offset, min(10.0, nxt - seg.offset))
            rec: dict[str, object] = {"caller_text": seg.text, "caller_end": round(seg.offset, 3), "bot_audio": first,
                   "latency": None, "latency_content_word": None}
            if first is not None:
                rec["latency"] = round(first - seg.offset, 4)
                st = next((e for e in starts if e.t >= seg.offset - 0.1), None)
                words = (st.text if st else "").lower().replace(",", " ").split()
                lead = 0
                while lead < len(words) and words[lead].strip(".!?") in FILLERS:
                    lead += 1
                # leading fillers are estimated at 0.3 s each (the bot's own word timings)
                rec["latency_content_word"] = round(first - seg.offset + 0.3 * lead, 4)
            turns.append(rec)
        elif seg.kind == "interruption" and seg.bot_speaking:
            stop = stop_after(seg.onset)
            hit = any(seg.onset - 0.1 <= b.t <= seg.offset + 0.5 for b in barge)
            if stop is None or stop - seg.onset > 1.5 or not hit:
                missed_barge += 1
            stops.append({"caller_text": seg.text, "onset": round(seg.onset, 3),
                          "stop_latency": None if stop is None else round(max(0.0, stop - seg.onset), 4),
                          "barge_in_event": hit})
        elif seg.kind in ("backchannel", "noise") and seg.bot_speaking:
            if any(seg.onset - 0.1 <= b.t <= seg.offset + 0.5 for b in barge):
                false_barge += 1
    lat = _measured(turns, "latency")
    cw = _measured(turns, "latency_content_word")
    sl = _measured(stops, "stop_latency")
    return {
        "turns": turns,
        "response_latency": {"p50": _pct(lat, 50), "p90": _pct(lat, 90), "n": len(lat),
                             "unanswered": sum(1 for t in turns if t["latency"] is None)},
        "response_latency_content_word": {"p50": _pct(cw, 50), "p90": _pct(cw, 90)},
        "barge_ins": stops,
        "barge_in_stop_latency": {"p50": _pct(sl, 50), "p90": _pct(sl, 90), "n": len(sl)},
        "false_barge_ins": false_barge,
        "missed_barge_ins": missed_barge,
        "backchannels_over_bot": sum(1 for s in segments if s.kind in ("backchannel", "noise") and s.bot_speaking),
    }
