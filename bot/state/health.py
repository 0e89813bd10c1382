"""Is the call store reachable? A small monitor that PINGs it, for /healthz.

Before this, /healthz said `"status": "ok"` while the store had been dead for minutes. The monitor
PINGs every `health_interval` (1 s) with a timeout of the same length, so an outage shows within
about 2 s (well inside the 5 s a load balancer is promised) and a recovery within 1 s. One failed
PING is enough to report it: the client already retries a dropped connection once, so a failure
here means the store really did not answer. The same monitor serves an external REDIS_URL and the
embedded server.

`StoreWatch` is what the runtime holds: the monitor, the embedded server's `Supervisor` (none for
an external REDIS_URL: restarting that is its operator's job) and the report /healthz shows.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from .settings import StateSettings
from .store import CallStore
from .supervise import Supervisor
from .tasks import stop_task, stopping

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreStatus:
    """The store's reachability: `since` is when it last changed (wall clock, s)."""
    ok: bool
    since: float
    error: str = ""
    checked: float = 0.0  # when it was last checked

    def observe(self, ok: bool, error: str, now: float) -> "StoreStatus":
        """The status after one check (pure)."""
        if ok == self.ok:
            return StoreStatus(ok, self.since, "" if ok else error, now)
        return StoreStatus(ok, now, "" if ok else error, now)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"ok": self.ok, "since": round(self.since, 3), "checked": round(self.checked, 3)}
        if not self.ok:
            d["error"] = self.error
        return d


class StoreHealth:
    def __init__(self, ping: Callable[[], Awaitable[Any]], settings: StateSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self._ping = ping
        self.interval = settings.health_interval
        self._clock = clock
        self.status = StoreStatus(ok=True, since=clock())
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="state-health")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def check(self) -> StoreStatus:
        """PING once now and record the answer."""
        try:
            await asyncio.wait_for(self._ping(), self.interval)
            ok, error = True, ""
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure to answer is the store being away
            ok, error = False, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        before = self.status
        self.status = before.observe(ok, error, self._clock())
        if before.ok and not ok:
            log.error("state: the call store is unreachable (%s)", error)
        elif ok and not before.ok:
            log.warning("state: the call store is reachable again after %.1f s", self.status.since - before.since)
        return self.status

    async def _run(self) -> None:
        while not stopping():
            await self.check()
            await asyncio.sleep(self.interval)


class StoreWatch:
    """The call store's health monitor and, for the embedded server, its supervisor."""

    def __init__(self, store: CallStore) -> None:
        self.store = store
        self.health = StoreHealth(store.redis.ping, store.settings)
        self.supervisor = Supervisor(store.embedded, store.settings) if store.embedded is not None else None

    def start(self) -> None:
        self.health.start()
        if self.supervisor is not None:
            self.supervisor.start()

    async def stop(self) -> None:
        """Before `store.close()`: a supervisor left running would restart the server it stops."""
        if self.supervisor is not None:
            await self.supervisor.stop()
        await self.health.stop()

    def report(self) -> dict[str, Any]:
        """For /healthz. The latest evidence wins: `ok` is false while the last PING failed, while
        the writer's writes fail (it tries every few ms under load, so it usually knows first; a
        replica mid-failover answers PING but refuses writes), and when the supervisor found the
        server dead after the last PING (restarted or not, nobody has checked it since)."""
        status = self.health.status
        writer = self.store.writer
        sup = self.supervisor
        d = status.to_dict()
        if status.ok and writer.outage_since is not None:
            d.update(ok=False, since=round(writer.outage_since, 3), error=f"writes failing: {writer.last_error}")
        elif status.ok and sup is not None and sup.last_down is not None and sup.last_down > status.checked:
            d.update(ok=False, since=round(sup.last_down, 3), error="the embedded server died; restarting it")
        log_ = self.store.log
        d.update(kind="embedded" if self.store.embedded is not None else "external",
                 pending=len(log_), events_pending=log_.events_pending, dropped=log_.dropped)
        if sup is not None:
            d["restarts"] = sup.restarts
            if sup.down_since is not None and sup.last_error:
                d["restart_error"] = sup.last_error
        return d
