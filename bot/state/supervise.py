"""The embedded server's watchdog: polls the valkey-server process and restarts it when it dies.

Without it a `kill -9` (or an OOM kill) of the embedded server left the bot running on a store that
was never coming back. The watchdog probes every `supervise_interval` (0.5 s): a dead process is
restarted at once on the same port and data dir (the append-only file brings its data back); a
process that exists but does not answer is given `supervise_hang_after` (15 s: loading a large
append-only file takes a while) before it is killed and restarted. A restart that fails is retried
with exponential backoff (0.5 s doubling to `supervise_backoff_max`, 30 s). Every restart is
logged and counted (`restarts`, shown in /healthz and /metrics).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from .embedded import EmbeddedValkey, Probe
from .settings import StateSettings
from .tasks import stop_task, stopping

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Delay before retry number `n` (1, 2, ...): `first` doubling up to `cap`."""
    first: float = 0.5
    cap: float = 30.0

    def delay(self, n: int) -> float:
        return min(self.cap, self.first * 2 ** max(0, min(n - 1, 30)))


class Supervisor:
    def __init__(self, server: EmbeddedValkey, settings: StateSettings) -> None:
        self.server = server
        self.interval = settings.supervise_interval
        self.hang_after = settings.supervise_hang_after
        self.backoff = Backoff(cap=settings.supervise_backoff_max)
        self.restarts = 0  # successful restarts
        self.failed_restarts = 0
        self.last_error = ""
        self.last_restart: float | None = None  # wall clock of the last successful restart
        self.down_since: float | None = None  # wall clock; None while the server is up
        self.last_down: float | None = None  # wall clock of the last time it was found dead
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="state-supervisor")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _run(self) -> None:
        unresponsive_since: float | None = None
        while not stopping():
            await asyncio.sleep(self.interval)
            probe = await asyncio.to_thread(self.server.probe_sync)
            now = time.monotonic()
            if probe is Probe.UP:
                unresponsive_since = None
                continue
            if probe is Probe.UNRESPONSIVE:
                unresponsive_since = unresponsive_since or now
                if now - unresponsive_since < self.hang_after:
                    continue
                log.error("state: the embedded Valkey (pid %d) has not answered for %.0f s; restarting it",
                          self.server.pid, now - unresponsive_since)
            else:
                log.error("state: the embedded Valkey (pid %d) died; restarting it on port %d",
                          self.server.pid, self.server.port)
            unresponsive_since = None
            await self._restart()

    async def _restart(self) -> None:
        self.down_since = self.last_down = time.time()
        attempt = 0
        while not stopping():
            attempt += 1
            try:
                if not await asyncio.to_thread(self.server.restart_sync):
                    return  # stopped meanwhile
            except Exception as e:  # noqa: BLE001 - any failure to start: log, back off, try again
                self.failed_restarts += 1
                self.last_error = repr(e)
                delay = self.backoff.delay(attempt)
                log.error("state: restart %d of the embedded Valkey failed (%s); next try in %.1f s",
                          attempt, e, delay)
                await asyncio.sleep(delay)
                continue
            self.restarts += 1
            self.last_restart = time.time()
            log.warning("state: embedded Valkey restarted (pid %d, port %d) after %.1f s down; %d restart(s) so far",
                        self.server.pid, self.server.port, self.last_restart - self.down_since, self.restarts)
            self.down_since = None
            return
