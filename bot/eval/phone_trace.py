"""Why each `bench phone` call went as it did: the server's own events for the call (its
`DUPLEXBOT_EVENT_LOG`, bot/engine/event_log.py) joined to the sample, on the sample's clock.

A call's events carry the server's stream time (seconds of caller audio since the call began); the
caller knows how many 20 ms frames it had sent before the sample's first one, so `t - offset` puts
every decision on the same clock as the labels and the audible bot audio. They also carry the
server's monotonic clock, which the callers share (one machine): `at` is when the server really
decided, on the caller's clock from the sample's first frame (`at - t`: how far the server ran
behind the audio; a bot speech start's `at` against the first audible frame: the way out). Only
what explains a turn is kept: the VAD's segments, the words at each pause, the end-of-turn
decisions with their reasons, holds, barge-ins and what the bot began to say.
"""
from __future__ import annotations

from typing import Any

from ..policy.fusion import FusionSettings

KEPT = ("caller_speech_start", "caller_speech_end", "transcript_partial", "end_of_turn", "hold", "barge_in",
        "bot_speech_start")
DETAIL = ("reason", "text", "confidence", "complete", "p_continue", "score")


def call_trace(events: list[dict[str, Any]], offset: float, after: float = -0.5,
               sent_mono: float | None = None) -> list[dict[str, Any]]:
    """The kept events of one call from `after` s before the sample on, with `t` relative to its
    start (and `at`, given when its first frame went out)."""
    out: list[dict[str, Any]] = []
    for e in events:
        t = e.get("t")
        if e.get("type") not in KEPT or not isinstance(t, (int, float)) or t - offset < after:
            continue
        d: dict[str, Any] = {"t": round(t - offset, 3), "type": e["type"]}
        mono = e.get("mono")
        if sent_mono is not None and isinstance(mono, (int, float)):
            d["at"] = round(mono - sent_mono, 3)
        for k in DETAIL:
            v = e.get(k)
            if v is not None and v != "":
                d[k] = round(v, 3) if isinstance(v, float) else v
        out.append(d)
    return out


def join_traces(rows: list[dict[str, Any]], by_call: dict[str, list[dict[str, Any]]]) -> int:
    """Attach `trace` to every row whose call is in the log; returns how many were found."""
    found = 0
    for r in rows:
        events, offset = by_call.get(r.get("call_id") or ""), r.get("stream_offset")
        if events is None or offset is None:
            continue
        r["trace"] = call_trace(events, offset, sent_mono=r.get("sent_mono"))
        found += 1
    return found


def takeover_reasons(rows: list[dict[str, Any]]) -> list[str]:
    """One line per take-over: the sample, when the bot was heard, and the end of turn behind it
    (the last one decided before the bot's first audible audio)."""
    lines = []
    for r in rows:
        if not r.get("takeover") or not r.get("trace"):
            continue
        heard = r.get("first_audible")
        ends = [e for e in r["trace"] if e["type"] == "end_of_turn" and (heard is None or e["t"] <= heard)]
        words = [e for e in r["trace"] if e["type"] == "transcript_partial" and (heard is None or e["t"] <= heard)]
        why = ends[-1] if ends else None
        lines.append(f"  {r['id']:<18} heard at {heard:+.2f} s, end {r['end']:.2f} s: " +
                     (f"end of turn at {why['t']:+.2f} s, {why.get('reason', '')}" if why else "no end of turn") +
                     (f"; last words \u201c{words[-1].get('text', '')}\u201d" if words else ""))
    return lines


def pause_words(rows: list[dict[str, Any]], slack: float = 0.05) -> list[dict[str, Any]]:
    """The words at every labelled pause of traced `rows`: each `transcript_partial` with its
    completeness that came inside a hold (`at` "hold") or at the end ("end"), with the confidences
    the fusion read there (the words', the voice's, the recogniser's)."""
    out = []
    for r in rows:
        for e in r.get("trace", []):
            if e["type"] != "transcript_partial" or "complete" not in e:
                continue
            t = e["t"]
            at = "end" if t >= r["end"] - slack else \
                "hold" if any(h0 - slack <= t <= h1 + slack for h0, h1 in r.get("holds", [])) else None
            if at is not None:
                out.append({"id": r["id"], "at": at, "t": t, "text": e.get("text", ""), "complete": e["complete"],
                            "p_continue": e.get("p_continue"), "score": e.get("score")})
    return out


def unsure_unfinished(words: list[dict[str, Any]], fs: FusionSettings = FusionSettings()) -> dict[str, int]:
    """How many of those pauses, by `at`, had words that look unfinished (completeness at most
    `incomplete`) and that the recogniser was unsure of (score under `unsure_score`), in a voice that
    does not go on (p(continue) under `continue_veto`): the pauses the fusion leaves to the voice and
    the model instead of waiting `incomplete_silence` (bot/policy/fusion.py)."""
    n = {"hold": 0, "end": 0}
    for w in words:
        pc, score = w["p_continue"], w["score"]
        if w["complete"] <= fs.incomplete and score is not None and score < fs.unsure_score \
                and pc is not None and pc < fs.continue_veto:
            n[w["at"]] += 1
    return n


def main(argv: list[str] | None = None) -> int:
    """`python -m bot.eval.phone_trace OUT...`: for `bench phone` result folders, the labelled pauses
    with words, and how many of them the unsure-words rule applies to."""
    import argparse
    import json
    from pathlib import Path

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("out", nargs="+", help="folders with a bench phone results.json")
    args = ap.parse_args(argv)
    every: list[dict[str, Any]] = []
    for d in args.out:
        words = pause_words(json.loads((Path(d) / "results.json").read_text()).get("samples", []))
        every += words
        print(f"{d}: {len(words)} pauses with words, unsure unfinished words: {unsure_unfinished(words)}")
    print(f"all: {len(every)} pauses with words, unsure unfinished words: {unsure_unfinished(every)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
