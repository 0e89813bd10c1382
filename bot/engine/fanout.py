"""Where a call's events go: its own log, the sinks (call store, files) and live subscribers.

A broken sink never breaks the call; a subscriber that does not keep up loses its oldest events
(its queue is bounded), never the call's time.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from . import events as ev

log = logging.getLogger(__name__)


class EventFanout:
    def __init__(self, sinks: list[Callable[[ev.Event], None]], queue_size: int):
        self.events: list[ev.Event] = []
        self._sinks = list(sinks)
        self._queue_size = queue_size
        self._subscribers: list[asyncio.Queue[ev.Event]] = []

    def emit(self, event: ev.Event) -> None:
        self.events.append(event)
        for sink in self._sinks:
            try:
                sink(event)
            except Exception:  # noqa: BLE001 - a broken sink never breaks the call
                log.exception("event sink failed")
        for q in self._subscribers:
            if q.full():
                q.get_nowait()
            q.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[ev.Event]:
        q: asyncio.Queue[ev.Event] = asyncio.Queue(maxsize=self._queue_size)
        self._subscribers.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[ev.Event]) -> None:
        if q in self._subscribers:
            self._subscribers.remove(q)
