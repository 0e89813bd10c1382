"""Where the time of each answer goes, per call and across calls (Prometheus histograms).

A sink on a call's events (`TurnTiming(...)` is callable with an event): from the end of the
caller's speech to the first bot audio the caller hears, in the call's own stream time, split at
the end-of-turn decision:

- `decide`: caller silence when the policy ended the turn (EndOfTurn.silence);
- `answer`: from that decision to the bot's first audio of the turn (responder, TTS, playout);
- `words`: from the caller's pause to the pause's transcript (ASR queue and batch), for the partial
  transcripts the fusion waits on.

Each end of turn is logged with its reason. `/metrics` shows them as
`duplexbot_turn_stage_seconds{stage=...}`; `bench phone` prints their means.
"""
from __future__ import annotations

import logging

from prometheus_client import Histogram

from . import events as ev

log = logging.getLogger(__name__)
BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)
STAGES = Histogram("duplexbot_turn_stage_seconds", "Time of each stage of an answer (stream time)", ["stage"],
                   buckets=BUCKETS)
_DECIDE, _ANSWER, _WORDS = STAGES.labels("decide"), STAGES.labels("answer"), STAGES.labels("words")


class TurnTiming:
    def __init__(self) -> None:
        self._decided: float | None = None  # stream time of the last end of turn not yet answered
        self._speech_end: float | None = None

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.CallerSpeechEnd):
            self._speech_end = event.t
        elif isinstance(event, ev.CallerSpeechStart):
            self._speech_end = None
        elif isinstance(event, ev.TranscriptPartial) and self._speech_end is not None and event.complete is not None:
            _WORDS.observe(max(0.0, event.t - self._speech_end))
            self._speech_end = None  # one per pause
        elif isinstance(event, ev.EndOfTurn):
            _DECIDE.observe(max(0.0, event.silence))
            self._decided = event.t
            log.info("call %s: end of turn at %.2f s after %.0f ms of silence (%s)", event.call_id[-12:], event.t,
                     event.silence * 1000, event.reason)
        elif isinstance(event, ev.BotSpeechStart) and self._decided is not None:
            _ANSWER.observe(max(0.0, event.t - self._decided))
            self._decided = None
        elif isinstance(event, ev.BargeIn):
            self._decided = None
