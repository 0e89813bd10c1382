"""Stopping background tasks reliably.

redis-py wraps commands in timeouts; a cancellation that lands as a command times out can come
back as a TimeoutError, which a retry loop then swallows. So loops also check `stopping()`, and
`stop_task` re-cancels until the task is really done.
"""
from __future__ import annotations

import asyncio


def stopping() -> bool:
    """True when the current task has been asked to stop (even if a CancelledError was lost)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def stop_task(task: asyncio.Task | None, timeout: float = 5.0) -> None:
    if task is None:
        return
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not task.done() and loop.time() < end:
        task.cancel()
        await asyncio.wait({task}, timeout=0.25)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: no "never retrieved" warning
