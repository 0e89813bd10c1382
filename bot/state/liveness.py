"""Heartbeats of this worker's live calls, and the reaper that ends calls whose worker died.

Every live call has a deadline in the `{p}:live` sorted set. Its worker pushes the deadline
forward every `heartbeat_interval`; a worker that dies stops doing so. Any worker's reaper ends
calls whose deadline passed (atomically, REAP_LUA), marking them `ended` / `worker_lost`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Callable

from . import counters
from .keys import Keys, as_text
from .scripts import BEAT_LUA, REAP_LUA
from .settings import StateSettings
from .tasks import stop_task, stopping
from .writer import TRANSIENT

log = logging.getLogger(__name__)


class Liveness:
    def __init__(self, redis: Any, settings: StateSettings, live_ids: Callable[[], list[str]],
                 records: Callable[[], dict[str, dict[str, str]]] | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self._live_ids = live_ids
        self._records = records or (lambda: {cid: {"call_id": cid} for cid in live_ids()})
        self._reap = redis.register_script(REAP_LUA)
        self._beat = redis.register_script(BEAT_LUA)
        self._tasks: list[asyncio.Task] = []
        self.reaped = 0
        self.beats = 0
        self.failures = 0
        self.skipped = 0  # single calls whose heartbeat failed (the others went on)
        self._up_since: float | None = None  # monotonic time of the first good beat after a failure

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._loop(self.beat, self.settings.heartbeat_interval), name="state-heartbeat"),
            loop.create_task(self._loop(self.reap, self.settings.reaper_interval), name="state-reaper"),
        ]

    async def stop(self) -> None:
        for t in self._tasks:
            await stop_task(t)
        self._tasks = []

    async def _loop(self, fn: Callable[[], Any], interval: float) -> None:
        while not stopping():
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except TRANSIENT as e:
                if stopping():
                    raise asyncio.CancelledError from e
                self.failures += 1
                counters.HEARTBEAT_ERRORS.inc()
                self._up_since = None
                log.debug("state liveness: %r", e)
            except Exception:  # a bug or bad data: logged and counted, the loop keeps its pace
                if stopping():
                    raise asyncio.CancelledError from None
                self.failures += 1
                counters.HEARTBEAT_ERRORS.inc()
                log.exception("state liveness")
            await asyncio.sleep(interval)

    async def beat(self) -> None:
        """Push this worker's live calls' deadlines forward (never re-adds a reaped call; registers
        again a call whose record Redis lost)."""
        now = time.time()
        records = self._records()
        deadline = int((now + self.settings.heartbeat_ttl) * 1000)
        wkey = self.keys.worker(self.settings.worker_id)
        ttl = max(1, int(self.settings.heartbeat_ttl))
        if records:
            try:
                await self._beat_calls(deadline, records)
            except TRANSIENT:
                raise
            except Exception as e:  # one call's data or key is bad: beat each alone, skip the bad one
                log.warning("state: heartbeat of %d call(s) failed (%s: %s); beating them one by one", len(records),
                            type(e).__name__, e)
                for cid, rec in records.items():
                    try:
                        await self._beat_calls(deadline, {cid: rec})
                    except TRANSIENT:
                        raise
                    except Exception as e1:
                        self.skipped += 1
                        counters.HEARTBEAT_ERRORS.inc()
                        log.error("state: heartbeat of call %r failed: %s: %s", as_text(cid)[:200],
                                  type(e1).__name__, e1)
        async with self.redis.pipeline(transaction=False) as p:
            p.hset(wkey, mapping={"worker": self.settings.worker_id, "calls": len(records), "ts": int(now * 1000)})
            p.expire(wkey, ttl)
            p.expire(self.keys.live, self.settings.retention.events)
            await p.execute()
        self.beats += 1
        if self._up_since is None:
            self._up_since = time.monotonic()

    async def _beat_calls(self, deadline: int, records: dict[str, dict[str, str]]) -> None:
        args: list[Any] = [deadline, self.settings.retention.events]
        for cid, rec in records.items():
            args += [self.keys.member(cid), json.dumps([as_text(x) for kv in rec.items() for x in kv])]
        await self._beat(keys=[self.keys.live, *(self.keys.call(c) for c in records)], args=args)

    async def reap(self, now: float | None = None) -> list[str]:
        """End every live call whose heartbeat deadline passed. Returns their ids.

        After Redis was away every deadline has lapsed, the living workers' too: reaping waits
        until this worker has been back for a full heartbeat TTL, so the others have beaten again."""
        if self._up_since is None or time.monotonic() - self._up_since < self.settings.heartbeat_ttl:
            return []
        now_ms = int((time.time() if now is None else now) * 1000)
        expired = await self.redis.zrangebyscore(self.keys.live, "-inf", now_ms, start=0, num=500)
        # ours are alive (their deadline lapsed while Redis was away)
        own = {self.keys.member(c) for c in self._live_ids()}
        done = []
        for raw in expired:
            member = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
            if member in own:
                continue
            call = self.keys.call_at(member)
            keys = [call, self.keys.live, f"{call}:events", self.keys.events]
            try:
                if int(await self._reap(keys=keys, args=[raw, now_ms, self.settings.retention.events, "worker_lost"])):
                    done.append(member)
            except TRANSIENT:
                raise
            except Exception as e:  # one bad entry must not keep the others from being reaped
                counters.HEARTBEAT_ERRORS.inc()
                log.error("state: reaping %r failed: %s: %s", as_text(member)[:200], type(e).__name__, e)
        if done:
            self.reaped += len(done)
            log.warning("state: reaped %d call(s) whose worker stopped heartbeating: %s", len(done), done)
        return done

    async def live_calls(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every live call of every worker (deadline not passed), as decoded call records."""
        now_ms = int(time.time() * 1000)
        ids = await self.redis.zrangebyscore(self.keys.live, now_ms, "+inf")
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as p:
            for raw in ids:
                p.hgetall(self.keys.call_at(raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw))
            records = await p.execute(raise_on_error=False)
        out = []
        for raw, rec in zip(ids, records):
            if not isinstance(rec, dict):  # one bad record (wrong type ...) must not hide the others
                log.error("state: cannot read live call %r: %s", as_text(raw)[:200], rec)
                continue
            d = {as_text(k): as_text(v) for k, v in rec.items()}
            d.setdefault("call_id", as_text(raw))
            if d.get("state") != "live":
                continue
            if tenant is not None and d.get("tenant") != tenant:
                continue
            out.append(d)
        return sorted(out, key=lambda d: d.get("started", ""))
