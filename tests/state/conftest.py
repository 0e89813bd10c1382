"""One embedded Valkey server per test module; each test gets its own key prefix."""
from __future__ import annotations

import asyncio
import uuid
from typing import Awaitable, Callable

import pytest

from bot.state.embedded import EmbeddedValkey
from bot.state.settings import StateSettings


@pytest.fixture(scope="module")
def valkey():
    server = EmbeddedValkey()
    server.start_sync()
    yield server
    server.stop_sync()


@pytest.fixture
def settings(valkey, tmp_path) -> StateSettings:
    return StateSettings(redis_url=valkey.url, prefix=f"t{uuid.uuid4().hex[:8]}", worker_id="w1",
                         heartbeat_interval=0.2, heartbeat_ttl=1.0, reaper_interval=0.2,
                         runtime_file=str(tmp_path / "redis.json"))


@pytest.fixture
async def store(settings):
    from bot.state.store import CallStore

    s = await CallStore.open(settings)
    yield s
    await s.close()
    leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not leaked, f"tasks left running after close: {leaked}"


async def wait_for(cond: Callable[[], Awaitable[bool] | bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll a real condition until true (bounded); no fixed sleeps as synchronisation."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        r = cond()
        if asyncio.iscoroutine(r):
            r = await r
        if r:
            return
        if loop.time() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)
