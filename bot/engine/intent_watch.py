"""The caller's intents, reported while they are still speaking.

Every transcript the call makes (at a pause, over the bot, at the end of the turn) is read for the
agent's intents (`bot.brain.intents.IntentDetector`); during long caller speech, when no other ASR
pass of this call is running, `IntentWatch` also asks for a partial transcript about every
`every` seconds (each one is one more ASR pass), of at most the last 8 s. A partial is optional
work: it is skipped (and counted in `shed`) while the recogniser has any utterance queued or
running, so under load it never delays, nor takes a core from, the words at a pause that a turn
decision waits for (at 20 calls partials were a quarter of all ASR passes); the words at each
pause are still read for intents. Nothing is heard, and
nothing is reported, during secure input.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Coroutine, Protocol

import numpy as np

from ..brain.intents import IntentDetector
from ..services.asr import SKIPPED as ASR_SKIPPED
from ..services.asr import Asr
from . import events as ev

WINDOW = 8.0  # seconds of the ongoing speech a partial transcript covers at most


class IntentHost(Protocol):
    """What the watch reads of its call."""

    @property
    def now(self) -> float: ...

    @property
    def secure_input(self) -> bool: ...

    def caller_audio(self, t0: float, t1: float) -> np.ndarray: ...


class IntentWatch:
    def __init__(self, call_id: str, detector: IntentDetector | None, host: IntentHost, asr: Asr,
                 emit: Callable[[ev.Event], None], spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[Any]],
                 every: float, pre_roll: float):
        self._call_id = call_id
        self.detector = detector if detector is not None and detector.specs else None
        self._host = host
        self._asr = asr
        self._emit = emit
        self._spawn = spawn
        self._every = every
        self._pre_roll = pre_roll
        self._in_speech = False
        self._at = 0.0  # stream time of the last partial transcript during speech
        self._busy = False
        self.shed = 0  # partial transcripts skipped because the recogniser was busy

    def speech_start(self, t: float, new_utterance: bool) -> None:
        if new_utterance:
            self._at = t
        self._in_speech = True

    def speech_end(self) -> None:
        self._in_speech = False

    def during_speech(self, utt_start: float | None, asr_busy: bool) -> None:
        """Each chunk: a partial transcript of the utterance begun at `utt_start` when one is due
        (`asr_busy`: another ASR pass of this call is running)."""
        host = self._host
        now = host.now
        if self.detector is None or not self._in_speech or self._busy or asr_busy or host.secure_input \
                or utt_start is None or now - self._at < self._every:
            return
        if self._asr.in_flight():
            self._at = now  # due again in `every` seconds
            self.shed += 1
            ASR_SKIPPED.labels("partial_busy").inc()
            return
        self._at, self._busy = now, True
        audio = host.caller_audio(max(utt_start - self._pre_roll, now - WINDOW), now)

        async def run() -> None:
            try:
                tr = await self._asr.transcribe_detailed(audio)
            finally:
                self._busy = False
            if tr.text and not host.secure_input:
                self._emit(ev.TranscriptPartial(call_id=self._call_id, t=host.now, text=tr.text))
                self.heard(tr.text, partial=True)

        self._spawn(run())

    def heard(self, text: str, partial: bool, turn_over: bool = False) -> None:
        """Intents heard in `text` not yet reported this caller turn (`turn_over`: the final words
        of the turn; the next turn starts afresh)."""
        if self.detector is None or self._host.secure_input:
            return
        for hit in self.detector.detect(text):
            self._emit(ev.IntentDetected(call_id=self._call_id, t=self._host.now, intent=hit.intent,
                                         confidence=hit.confidence, text=text, partial=partial))
        if turn_over:
            self.detector.new_turn()
