"""One heap of deadlines for every timed object of the UA core (transactions, calls, registrations,
keepalives), sans-IO.

Entries are never removed when their object moves on: each kind registers a `deadline(key, obj)`
that says what the object wants now, and an entry whose time no longer matches is stale and
dropped when it reaches the top. So re-arming costs one push and nothing scans the heap.
"""
from __future__ import annotations

import heapq
import itertools
from typing import Any, Callable, Hashable

Deadline = Callable[[Any, Any], "float | None"]
Fire = Callable[[Any, Any, float], None]


class TimerHeap:
    def __init__(self) -> None:
        self.heap: list[tuple[float, int, str, Hashable, Any]] = []
        self._seq = itertools.count()
        self._kinds: dict[str, tuple[Deadline, Fire]] = {}

    def on(self, kind: str, deadline: Deadline, fire: Fire) -> None:
        """Objects of `kind` want `fire(key, obj, now)` at `deadline(key, obj)` (None: not at all)."""
        self._kinds[kind] = (deadline, fire)

    def push(self, kind: str, key: Hashable, obj: Any) -> None:
        """(Re)arm: the object's deadline may have changed."""
        t = self._kinds[kind][0](key, obj)
        if t is not None:
            heapq.heappush(self.heap, (t, next(self._seq), kind, key, obj))

    def next_deadline(self) -> float | None:
        heap = self.heap
        while heap:
            t, _, kind, key, obj = heap[0]
            if self._kinds[kind][0](key, obj) == t:
                return t
            heapq.heappop(heap)       # stale: the object moved on or is gone
        return None

    def fire_due(self, now: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= now:
            t, _, kind, key, obj = heapq.heappop(heap)
            deadline, fire = self._kinds[kind]
            if deadline(key, obj) != t:
                continue
            fire(key, obj, now)
