"""The asyncio edge of the loop-lag rule: every `interval` s, how late the event loop woke us.

A sleeper that asks for `interval` and wakes `interval + lag` later measures `lag`: the time other
callbacks held the loop. The samples go to `AdmissionController.record_lag` (bot/engine/admission.py).
"""
from __future__ import annotations

import asyncio
from typing import Callable

INTERVAL = 0.1


class LoopLagMonitor:
    def __init__(self, record: Callable[[float, float], None], interval: float = INTERVAL) -> None:
        self.record = record            # record(lag_s, now)
        self.interval = interval
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="loop-lag-monitor")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.record(now - asked, now)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
