"""Speculations: answers prepared on a provisional transcript at a pause, before the end of turn.

At most one per call at a time. The session starts one when the words at a pause come back, and
either commits it (the end of turn came on that very transcript: it becomes the answer) or wastes
it (the caller went on, the turn ended on other words, something else took the turn). Every
outcome is an event (`Speculation`, tied by id) and a counter, so a developer sees how many model
calls speculation costs and how much head start it gave.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable

from ..services.responder import RespondContext
from . import events as ev
from .reply import Reply


@dataclass
class Draft:
    id: int
    start: float  # the caller audio it answers (stream seconds)
    end: float
    text: str
    ctx: RespondContext
    reply: Reply
    task: asyncio.Task[None]
    t0: float  # stream time it started
    instructions: list[str]  # the whispers it was given (consumed only if it is used)

    def answers(self, start: float, end: float) -> bool:
        return abs(self.start - start) < 1e-6 and abs(self.end - end) < 1e-6


class Speculations:
    def __init__(self, call_id: str, emit: Callable[[ev.Event], None], now: Callable[[], float]):
        self._call_id = call_id
        self._emit = emit
        self._now = now
        self._ids = 0
        self.current: Draft | None = None
        self.started = self.used = self.wasted = 0

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def begin(self, draft: Draft) -> None:
        self.waste("a later pause")
        self.current = draft
        self.started += 1
        self._emit(ev.Speculation(call_id=self._call_id, t=self._now(), id=draft.id, outcome="started",
                                  text=draft.text))

    def waste(self, reason: str) -> None:
        d, self.current = self.current, None
        if d is None:
            return
        d.task.cancel()
        self.wasted += 1
        self._emit(ev.Speculation(call_id=self._call_id, t=self._now(), id=d.id, outcome="wasted", text=d.text,
                                  reason=reason))

    def take(self, start: float, end: float) -> Draft | None:
        """The draft for the turn that just ended on [start, end] (now no longer current), or None
        (a draft for other words is wasted)."""
        d = self.current
        if d is None:
            return None
        if not d.answers(start, end):
            self.waste("the turn ended on other words")
            return None
        self.current = None
        self.used += 1
        self._emit(ev.Speculation(call_id=self._call_id, t=self._now(), id=d.id, outcome="used", text=d.text,
                                  ready=round(self._now() - d.t0, 3)))
        return d

    def waiting(self) -> Draft | None:
        """The draft still waiting for its turn's end (what `settle` must not wait for)."""
        d = self.current
        return d if d is not None and not d.ctx.committed.is_set() else None

    async def settle(self, tasks: set[asyncio.Task]) -> None:
        """Wait until every one of a call's `tasks` has finished, but a draft still waiting for its
        turn's end only until it is ready (deterministic stepping: the simulator's --fast, tests)."""
        while True:
            d = self.waiting()
            pending = [t for t in tasks if d is None or t is not d.task]
            if d is not None and not d.reply.prepared.is_set():
                pending.append(asyncio.ensure_future(d.reply.prepared.wait()))
            if not pending:
                return
            await asyncio.gather(*pending, return_exceptions=True)
