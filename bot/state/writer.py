"""The asyncio edge of the event log: drains `EventLog` into Redis in order.

A batch stays at the head of the queue until Redis confirms it. When Redis is away the writer
backs off and retries the same batch; the Lua scripts make a retry after a lost reply harmless
(per-call seq / revision checks), so every record lands exactly once and in order.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any

from redis import exceptions as rexc

from . import counters, quarantine
from .eventlog import AuditOp, CallOp, EventLog, EventOp, Op, RecordingOp
from .keys import Keys
from .scripts import AUDIT_LUA, EVENTS_LUA, TRANSITION_LUA
from .settings import StateSettings
from .tasks import stop_task, stopping

log = logging.getLogger(__name__)

# Errors a retry can cure: the server is away, restarting, loading its data, or a replica that is
# being promoted. Anything else Redis refuses (bad data, out of memory) is dropped and counted.
TRANSIENT = (rexc.ConnectionError, rexc.TimeoutError, rexc.ReadOnlyError, rexc.TryAgainError, rexc.MasterDownError,
             ConnectionError, OSError, asyncio.TimeoutError)


class RedisWriter:
    def __init__(self, redis: Any, log_: EventLog, settings: StateSettings) -> None:
        self.redis = redis
        self.log = log_
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self._events = redis.register_script(EVENTS_LUA)
        self._transition = redis.register_script(TRANSITION_LUA)
        self._audit = redis.register_script(AUDIT_LUA)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task | None = None
        self.connected = True
        self.written = 0  # event records stored
        self.duplicates = 0  # records Redis already had (retries after a lost reply)
        self.failures = 0  # transient write failures (each retried)
        self.errors = 0  # ops given up on (Redis refused them)
        self.last_error = ""
        self.outage_since: float | None = None  # wall clock of the first failed write of this outage
        self._buffered_mark = 0  # `log.accepted` up to which events are counted as buffered
        self._dropped_seen = 0  # `log.dropped` already counted
        self._outage_buffered = 0  # events held in memory during this outage

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="state-writer")

    def kick(self) -> None:
        """New ops are queued (called from emit; cheap, never blocks)."""
        self._idle.clear()
        self._wake.set()

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written. False on timeout."""
        self.kick()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self, timeout: float = 2.0) -> None:
        if self._task is None:
            return
        await self.flush(timeout)
        await stop_task(self._task)
        self._task = None

    async def _run(self) -> None:
        backoff = 0.02
        while not stopping():
            batch = self.log.peek(self.settings.batch_max)
            if not batch:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._write(batch)
            except TRANSIENT as e:
                if stopping():
                    raise asyncio.CancelledError from e
                self._away(e)
                # +-20 %: workers sharing one Redis do not all retry in the same instant when it returns
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.settings.retry_max)
                continue
            except Exception as e:  # refused (bad data, wrong type) or unserialisable: find the poisoned op
                if stopping():
                    raise asyncio.CancelledError from e
                self.errors += 1
                self.last_error = repr(e)
                log.warning("state: a batch of %d op(s) failed (%s: %s); writing them one by one", len(batch),
                            type(e).__name__, e)
                done = await self._isolate(batch)
                self.log.commit(done)
                if done < len(batch):  # Redis went away meanwhile: back off, the rest stays queued
                    self.connected = False
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 1.0)
                continue
            else:
                self._resolve(batch, None)
            self.connected = True
            backoff = 0.02
            self.log.commit(len(batch))
            if self.outage_since is not None or self.log.dropped != self._dropped_seen:
                self._back()

    def _away(self, e: BaseException) -> None:
        """A write failed on a transient error: everything queued stays in memory (in order, up to
        `buffer_max` events) and is retried."""
        self.failures += 1
        self.connected = False
        self.last_error = repr(e)
        if self.outage_since is None:
            self.outage_since = time.time()
            self._buffered_mark = self.log.accepted - self.log.events_pending
            log.error("state: the store is unreachable (%r); holding writes in memory (up to %d events)",
                      e, self.log.buffer_max)
        counters.EVENTS_BUFFERED.inc(self.log.accepted - self._buffered_mark)
        self._outage_buffered += self.log.accepted - self._buffered_mark
        self._buffered_mark = self.log.accepted
        self._count_dropped()

    def _back(self) -> None:
        if self.outage_since is not None:
            log.warning("state: the store is back after %.1f s; writing the %d event(s) held meanwhile",
                        time.time() - self.outage_since, self._outage_buffered)
            self.outage_since = None
            self._outage_buffered = 0
        self._count_dropped()

    def _count_dropped(self) -> None:
        """Events the full buffer refused (counted in `EventLog`), into the process counter."""
        if self.log.dropped > self._dropped_seen:
            counters.EVENTS_DROPPED.inc(self.log.dropped - self._dropped_seen)
        self._dropped_seen = self.log.dropped

    async def _isolate(self, batch: list[Op]) -> int:
        """Write a failed batch one op at a time: the good ops land, an op that fails
        `quarantine.TRIES` times is set aside in `{p}:quarantine` (the loop never dies on it).
        Returns how many ops are settled: fewer than the batch when Redis became unreachable."""
        for i, op in enumerate(batch):
            err: Exception | None = None
            for _ in range(quarantine.TRIES):
                try:
                    await self._write([op])
                    err = None
                    break
                except TRANSIENT:
                    return i
                except Exception as e:
                    err = e
            if err is not None:
                cid = op.fields.get("call_id", "") if isinstance(op, AuditOp) else op.call_id
                await quarantine.quarantine(self.redis, self.keys.quarantine, self.settings.retention.events,
                                            "writer", op, err, cid)
            self._resolve([op], err)
        return len(batch)

    @staticmethod
    def _resolve(batch: list[Op], err: Exception | None) -> None:
        for op in batch:
            if isinstance(op, CallOp) and op.done is not None and not op.done.done():
                op.done.set_result(err is None)

    async def _write(self, batch: list[Op]) -> None:
        # a batch is a run of EventOps or one other op (EventLog.peek)
        first, events = batch[0], [op for op in batch if isinstance(op, EventOp)]
        if events:
            await self._write_events(events)
        elif isinstance(first, CallOp):
            await self._write_call(first)
        elif isinstance(first, AuditOp):
            await self._write_audit(first)
        elif isinstance(first, RecordingOp):
            await self._write_recording(first)

    async def _write_events(self, ops: list[EventOp]) -> None:
        ret = self.settings.retention
        minid = max(0, int(time.time() * 1000) - ret.events * 1000)
        keys: list[str] = [self.keys.events]
        index: dict[str, int] = {}
        payload = []
        for op in ops:
            i = index.get(op.call_id)
            if i is None:
                i = index[op.call_id] = len(index)
                keys += [self.keys.call_events(op.call_id), self.keys.call(op.call_id),
                         self.keys.transcript(op.call_id)]
            payload.append([i, op.seq, [x for kv in op.fields.items() for x in kv],
                            [x for kv in (op.transcript or {}).items() for x in kv]])
        args = [ret.events, ret.transcripts, f"{minid}-0", json.dumps(payload, separators=(",", ":")),
                self.settings.global_maxlen]
        n = await self._events(keys=keys, args=args)
        self.written += int(n)
        counters.EVENTS_WRITTEN.inc(int(n))
        self.duplicates += len(ops) - int(n)

    async def _write_call(self, op: CallOp) -> None:
        ret = self.settings.retention
        deadline = int((time.time() + self.settings.heartbeat_ttl) * 1000)
        args: list[Any] = [self.keys.member(op.call_id), op.rev, op.state, ret.events, deadline]
        for k, v in op.fields.items():
            args += [k, v]
        res = await self._transition(keys=[self.keys.call(op.call_id), self.keys.live], args=args)
        if isinstance(res, bytes):
            res = res.decode()
        if res == "dup":
            self.duplicates += 1

    async def _write_audit(self, op: AuditOp) -> None:
        ret = self.settings.retention.audit
        minid = max(0, int(time.time() * 1000) - ret * 1000)
        # An audit record carries its own id: a retry after a lost reply is recognised by it.
        marker = f"{self.keys.audit}:seen:{op.fields.get('audit_id', '')}"
        args: list[Any] = [min(ret, 86400), ret, f"{minid}-0"]
        for k, v in op.fields.items():
            args += [k, v]
        if not int(await self._audit(keys=[self.keys.audit, marker], args=args)):
            self.duplicates += 1

    async def _write_recording(self, op: RecordingOp) -> None:
        key = self.keys.recording(op.call_id)
        async with self.redis.pipeline(transaction=True) as p:
            p.hset(key, mapping=op.fields)
            p.expire(key, self.settings.retention.recordings)
            await p.execute()
