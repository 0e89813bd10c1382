"""A small consumer-group reader for the event streams (analytics, exporters, the console).

Each entry is handed to `handler` and acknowledged only after it returns, so a consumer that
crashes mid-entry leaves it pending; `claim_stale()` (XAUTOCLAIM) lets another consumer of the
same group take over entries pending longer than `min_idle` seconds.

Nothing stops the loop: a handler failure is logged and counted, and an entry whose handler fails
`quarantine.TRIES` times is copied to the quarantine stream and acknowledged (a poisoned entry
would otherwise come back on every claim, forever). A lost connection is retried with back-off.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from redis import exceptions as rexc

from . import counters, quarantine
from .keys import as_text
from .tasks import stopping

log = logging.getLogger(__name__)

Entry = tuple[str, dict[str, str]]
Handler = Callable[[str, dict[str, str]], Awaitable[None] | None]


def _s(v: Any) -> str:
    # Entries are data from anyone: bytes that are not UTF-8 become '\\xNN', never an exception.
    return as_text(v) if isinstance(v, bytes) else str(v)


def _decode(entries: Any) -> list[Entry]:
    out = []
    for eid, fields in entries or []:
        if fields is None:  # deleted (trimmed) while pending
            continue
        out.append((_s(eid), {_s(k): _s(v) for k, v in fields.items()}))
    return out


class StreamConsumer:
    def __init__(self, redis: Any, stream: str, group: str, consumer: str, min_idle: float = 30.0,
                 start: str = "0", quarantine_stream: str | None = None, quarantine_ttl: int = 7 * 86400) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.min_idle_ms = int(min_idle * 1000)
        self.start = start
        # Streams are named `{p}:...` (a prefix never holds ':'): poisoned entries go to `{p}:quarantine`.
        self.quarantine_stream = quarantine_stream or f"{stream.split(':', 1)[0]}:quarantine"
        self.quarantine_ttl = quarantine_ttl
        self.handled = 0
        self.claimed = 0
        self.failed = 0
        self.quarantined = 0
        self.errors = 0  # failed reads / claims (retried)
        self._failures: dict[str, int] = {}  # entry id -> handler failures so far

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id=self.start, mkstream=True)
        except rexc.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def read(self, count: int = 100, block: float | None = 1.0) -> list[Entry]:
        """New entries for this consumer (they stay pending until `ack`)."""
        res = await self.redis.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count,
                                          block=None if block is None else int(block * 1000))
        out: list[Entry] = []
        for _stream, entries in res or []:
            out += _decode(entries)
        return out

    async def pending_mine(self, count: int = 100) -> list[Entry]:
        """Entries delivered to this consumer and not yet acknowledged (after a restart)."""
        res = await self.redis.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=count)
        out: list[Entry] = []
        for _stream, entries in res or []:
            out += _decode(entries)
        return out

    async def claim_stale(self, count: int = 100) -> list[Entry]:
        """Take over entries other consumers left pending for longer than `min_idle`."""
        out: list[Entry] = []
        start = "0-0"
        while True:
            res = await self.redis.xautoclaim(self.stream, self.group, self.consumer, self.min_idle_ms,
                                              start_id=start, count=count)
            start = _s(res[0])
            out += _decode(res[1])
            if start == "0-0" or len(out) >= count:
                break
        self.claimed += len(out)
        return out

    async def ack(self, ids: list[str]) -> int:
        return int(await self.redis.xack(self.stream, self.group, *ids)) if ids else 0

    async def _handle(self, handler: Handler, entries: list[Entry]) -> None:
        for eid, fields in entries:
            try:
                r = handler(eid, fields)
                if asyncio.iscoroutine(r):
                    await r
            except Exception as e:
                self.failed += 1
                counters.CONSUMER_ERRORS.inc()
                n = self._failures.pop(eid, 0) + 1
                if n < quarantine.TRIES:
                    self._failures[eid] = n
                    while len(self._failures) > 10_000:  # entries another consumer took over
                        del self._failures[next(iter(self._failures))]
                    log.exception("consumer %s/%s: handler failed on %s (left pending)", self.group, self.consumer, eid)
                    continue
                await quarantine.quarantine(self.redis, self.quarantine_stream, self.quarantine_ttl,
                                            f"consumer:{self.group}", {"stream": self.stream, "id": eid,
                                                                       "fields": fields}, e, fields.get("call_id", ""))
                self.quarantined += 1
                await self.ack([eid])
                continue
            self._failures.pop(eid, None)
            await self.ack([eid])
            self.handled += 1

    async def run(self, handler: Handler, block: float = 1.0, claim_every: float = 10.0) -> None:
        """Consume forever: own pending entries first, then new ones, reclaiming stale ones from
        crashed consumers every `claim_every` seconds. Failures are retried with back-off. Cancel
        to stop."""
        loop = asyncio.get_running_loop()
        next_claim = loop.time()
        ready = False
        backoff = 0.05
        while not stopping():
            try:
                if not ready:
                    await self.ensure_group()
                    await self._handle(handler, await self.pending_mine())
                    ready = True
                if loop.time() >= next_claim:
                    await self._handle(handler, await self.claim_stale())
                    next_claim = loop.time() + claim_every
                await self._handle(handler, await self.read(block=block))
                backoff = 0.05
            except Exception as e:  # connection lost, group deleted ...: log, count, retry
                if stopping():
                    raise asyncio.CancelledError from e
                self.errors += 1
                counters.CONSUMER_ERRORS.inc()
                log.warning("consumer %s/%s: %r (retrying in %.2fs)", self.group, self.consumer, e, backoff)
                if isinstance(e, rexc.ResponseError) and "NOGROUP" in str(e):
                    ready = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
