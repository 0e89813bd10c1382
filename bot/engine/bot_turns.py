"""The bot's side of the call: numbered turns, what each one says, and what the caller heard of it.

`BotTurns` owns the playout and is the `ReplyHost` every `Reply` writes to: a turn is opened when
its answer is committed, sentences are played into it, actions ride on it until its audio has
played. When a turn ends (played out, or cut by a barge-in, a take-over, a hang-up) the text the
caller heard goes back to the call (`said`) and the events are emitted here, once.
"""
from __future__ import annotations

from typing import Callable, Protocol

from ..services.responder import ResponderAction, ResponderError, ToolNote
from . import events as ev
from .playout import Playout, Truncation
from .reply import Spoken


class BotTurnsHost(Protocol):
    """What the bot's turns tell their call."""

    def said(self, text: str) -> None: ...  # a bot line the caller heard (whole or in part)

    def turn_done(self, turn: int, actions: list[ResponderAction]) -> None: ...  # played out in full


class BotTurns:
    def __init__(self, call_id: str, out_rate: int | None, host: BotTurnsHost, emit: Callable[[ev.Event], None],
                 now: Callable[[], float], clock: Callable[[], int] | None = None):
        self._call_id = call_id
        self._host = host
        self._emit = emit
        self._now = now
        self.playout = Playout(out_rate, self._first_audio, self._done, clock)
        self.turn = 0  # the last turn opened
        self.last_started = 0  # the last turn whose audio began playing
        self.speaking_since: float | None = None
        self.notice_turn: int | None = None  # the turn that is a notice (e.g. recording consent)
        self._text: dict[int, str] = {}
        self._actions: dict[int, list[ResponderAction]] = {}

    def is_speaking(self) -> bool:
        return self.playout.is_speaking()

    def opened_unheard(self) -> bool:
        """A turn is open whose audio has not begun (the caller can still take it back)."""
        return self.last_started != self.turn and not self.playout.has_audio()

    def forget(self, turn: int) -> None:
        self._text.pop(turn, None)

    # -- ReplyHost ----------------------------------------------------------------------------
    def open_bot_turn(self) -> int:
        self.turn += 1
        self.playout.open_turn(self.turn)
        self._text[self.turn] = ""
        self._actions[self.turn] = []
        return self.turn

    def play(self, turn: int, sentence: Spoken) -> None:
        if turn in self._text:  # not cut meanwhile
            self._text[turn] = (self._text[turn] + " " + sentence.text).strip()
        self.playout.enqueue(turn, sentence.text, sentence.audio, sentence.rate)

    def add_turn_action(self, turn: int, action: ResponderAction) -> None:
        if turn in self._actions:
            self._actions[turn].append(action)

    def close_bot_turn(self, turn: int) -> None:
        self.playout.close_turn(turn)

    def on_tool_note(self, note: ToolNote, speculative: bool) -> None:
        self._emit(ev.ToolStep(call_id=self._call_id, t=self._now(), phase=note.phase, name=note.name,
                               arguments=note.arguments, result=note.result, ok=note.ok, elapsed=note.elapsed,
                               speculative=speculative))

    def on_responder_error(self, error: ResponderError) -> None:
        self._emit(ev.ErrorEvent(call_id=self._call_id, t=self._now(), where="responder", message=str(error),
                                 retryable=error.retryable))

    # -- the playout's callbacks and cuts -----------------------------------------------------
    def _first_audio(self, turn: int, pos: int) -> None:
        self.last_started = turn
        if self.speaking_since is None:
            self.speaking_since = self._now()
        self._emit(ev.BotSpeechStart(call_id=self._call_id, t=self._now(), text=self._text.get(turn, ""), turn=turn))

    def _done(self, turn: int) -> None:
        self.speaking_since = None
        text = self._text.pop(turn, "")
        actions = self._actions.pop(turn, [])
        self._emit(ev.BotSpeechStop(call_id=self._call_id, t=self._now(), reason="done", turn=turn))
        if text:
            self._host.said(text)
            self._emit(ev.TranscriptFinal(call_id=self._call_id, t=self._now(), text=text, speaker="bot"))
        self._host.turn_done(turn, actions)
        if turn == self.notice_turn:
            self.notice_turn = None

    def cut(self, reason: str) -> list[Truncation]:
        """Drop all queued bot audio now; what the caller heard of each cut turn is said."""
        cuts = self.playout.clear()
        self.speaking_since = None
        self.notice_turn = None
        for c in cuts:
            self._text.pop(c.turn, None)
            self._actions.pop(c.turn, None)
            t = self._now()
            self._emit(ev.BotSpeechStop(call_id=self._call_id, t=t, reason=reason, turn=c.turn))
            self._emit(ev.BotTruncated(call_id=self._call_id, t=t, heard=c.heard, unheard=c.unheard, turn=c.turn))
            if c.heard:
                self._host.said(c.heard)
                self._emit(ev.TranscriptFinal(call_id=self._call_id, t=t, text=c.heard, speaker="bot"))
        return cuts
