"""`CallStore`: the one object the call engine uses for Redis (as `runtime.state`).

Nothing here may stall or break a call: `emit` only queues; `call_started`/`call_ended` wait at
most `op_timeout` for Redis and then go on (the write stays queued and lands when Redis returns);
`policy_for` falls back to the last known policy, then to the defaults.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, Callable

from ..engine.events import Event
from ..engine.port import CallInfo
from ..policy.base import PolicySettings
from .embedded import EmbeddedValkey
from .eventlog import EventLog
from .keys import Keys, as_text
from .liveness import Liveness
from .policy import DEFAULT_POLICY
from .policy_store import PolicyStore, PolicyWatcher
from .runtime_file import bot_path, remove_runtime_file, write_runtime_file
from .settings import StateSettings
from .writer import TRANSIENT, RedisWriter

log = logging.getLogger(__name__)


def connect(url: str, settings: StateSettings) -> Any:
    import redis.asyncio as aredis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    # One quick retry: after a server restart each pooled connection fails once ("closed by
    # server") before it reconnects. Longer outages are the writer's business (it keeps retrying).
    return aredis.Redis.from_url(url, socket_timeout=settings.socket_timeout,
                                 socket_connect_timeout=min(1.0, settings.socket_timeout),
                                 health_check_interval=5, retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1))


class CallStore:
    def __init__(self, settings: StateSettings, redis: Any, embedded: EmbeddedValkey | None = None,
                 base_settings: PolicySettings | None = None) -> None:
        self.settings = settings
        self.worker_id = settings.worker_id
        self.redis = redis
        self.embedded = embedded
        self.keys = Keys(settings.prefix)
        self.base_settings = base_settings
        self.log = EventLog(settings.buffer_max)
        self.writer = RedisWriter(redis, self.log, settings)
        self.policies = PolicyStore(redis, self.keys)
        self.watcher = PolicyWatcher(self.policies, base_settings)
        self._calls: dict[str, CallInfo] = {}
        self._consent: dict[str, bool] = {}
        self._started: dict[str, int] = {}
        self._policy_cache: dict[tuple[str, str], PolicySettings] = {}
        self._ending: dict[str, CallInfo] = {}  # ended here, the 'ended' write not yet stored
        self.liveness = Liveness(redis, settings, lambda: [*self._calls, *self._ending], self._live_records)
        self._closed = False
        self.url = ""
        self.runtime_path = bot_path(settings)

    # ---- lifecycle ---------------------------------------------------------------------------
    @classmethod
    async def open(cls, settings: StateSettings | None = None, base_settings: PolicySettings | None = None,
                   start_tasks: bool = True, http_port: int | None = None) -> "CallStore":
        """Connect to `settings.redis_url`, or start an embedded Valkey server when it is None
        (and publish its URL, with this bot's HTTP port, in its runtime file for the CLI)."""
        settings = settings or StateSettings()
        embedded = None
        url = settings.redis_url
        if url is None:
            embedded = EmbeddedValkey(data_dir=settings.embedded_dir, persist=settings.embedded_persist)
            await embedded.start()
            url = embedded.url
        redis = connect(url, settings)
        store = cls(settings, redis, embedded, base_settings)
        store.url = url
        if embedded is not None:
            try:
                write_runtime_file(store.runtime_path, url, http_port)
            except OSError as e:
                log.warning("state: cannot write runtime file %s: %s", store.runtime_path, e)
        if start_tasks:
            store.writer.start()
            store.watcher.start()
            store.liveness.start()
        return store

    async def close(self) -> None:
        """Flush what is queued (briefly), stop background work and the embedded server."""
        if self._closed:
            return
        self._closed = True
        await self.writer.stop(timeout=2.0)
        await self.watcher.stop()
        await self.liveness.stop()
        try:
            await asyncio.wait_for(self.redis.aclose(), 2.0)
        except Exception:
            pass
        if self.embedded is not None:
            remove_runtime_file(self.runtime_path)
            await self.embedded.stop()

    async def flush(self, timeout: float | None = 5.0) -> bool:
        return await self.writer.flush(timeout)

    # ---- calls -------------------------------------------------------------------------------
    async def _await_op(self, fut: asyncio.Future) -> bool:
        self.writer.kick()
        if not self.writer.connected:
            return False  # Redis is known to be away: do not hold the call up; written on return
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.settings.op_timeout)
        except asyncio.TimeoutError:
            return False  # still queued: written when Redis is back

    async def call_started(self, info: CallInfo) -> None:
        self._calls[info.call_id] = info
        self._started[info.call_id] = int(time.time() * 1000)
        fut = asyncio.get_running_loop().create_future()
        self.log.transition(info.call_id, "live", self._record(info), fut)
        await self._await_op(fut)

    def _record(self, info: CallInfo) -> dict[str, Any]:
        return {"call_id": as_text(info.call_id), "transport": info.transport, "caller": info.caller,
                "callee": info.callee, "tenant": info.tenant, "worker": self.worker_id,
                "started": self._started.get(info.call_id, 0), "secure_input": False}

    def _live_records(self) -> dict[str, dict[str, str]]:
        out = {}
        for info in (*self._calls.values(), *self._ending.values()):
            rec = self._record(info)
            rec["secure_input"] = self.is_secure_input(info.call_id)
            out[info.call_id] = {k: ("1" if v is True else "0" if v is False else as_text(str(v)))
                                 for k, v in rec.items()}
        return out

    async def call_ended(self, call_id: str, reason: str) -> None:
        fut = asyncio.get_running_loop().create_future()
        counters = self.log.call_counters(call_id)
        self.log.transition(call_id, "ended", {
            "ended": int(time.time() * 1000), "end_reason": reason, "secure_input": False,
            "events_dropped": counters["dropped"], "events_suppressed": counters["suppressed"],
        }, fut)
        info = self._calls.pop(call_id, None)
        if info is not None:
            self._ending[call_id] = info
            fut.add_done_callback(lambda _f: (self._ending.pop(call_id, None), self._started.pop(call_id, None)))
        self._consent.pop(call_id, None)
        self.log.forget(call_id)
        await self._await_op(fut)

    def emit(self, event: Event) -> None:
        """Queue an engine event for the call's stream and the global stream. Never blocks or
        raises; when the buffer is full the event is dropped and counted."""
        try:
            if self.log.add(event) is not None:
                self.writer.kick()
        except Exception:  # a malformed event must never break a call
            log.exception("state: emit failed for %r", event)

    # ---- privacy -----------------------------------------------------------------------------
    def set_secure_input(self, call_id: str, on: bool) -> None:
        """While on: transcripts are not stored, DTMF digits are blanked. The engine must also pause
        recording, ASR-to-LLM context and supervisor audio (ask `is_secure_input`)."""
        if self.log.set_secure(call_id, on):
            self.log.transition(call_id, "", {"secure_input": on})
            self.writer.kick()

    def is_secure_input(self, call_id: str) -> bool:
        return self.log.is_secure(call_id)

    def record_consent(self, call_id: str, granted: bool, method: str = "speech") -> None:
        """Log the caller's answer to the recording notice (stream + recording record)."""
        self._consent[call_id] = granted
        now = int(time.time() * 1000)
        self.log.note(call_id, "recording_consent", granted=granted, method=method)
        self.log.recording(call_id, {"consent": granted, "consent_method": method, "consent_ts": now})
        self.writer.kick()

    def may_record(self, call_id: str) -> bool:
        """Recording is allowed only when enabled, consented to on this call, and not in secure input."""
        return (self.settings.recording_enabled and self._consent.get(call_id, False)
                and not self.is_secure_input(call_id))

    def recording_saved(self, call_id: str, uri: str, seconds: float) -> None:
        """Register a recording's metadata (expires with the recordings retention)."""
        if not self._consent.get(call_id, False):
            raise PermissionError(f"call {call_id}: no recording consent was captured")
        self.log.recording(call_id, {"uri": uri, "seconds": round(seconds, 3), "saved_ts": int(time.time() * 1000)})
        self.log.note(call_id, "recording_saved", seconds=round(seconds, 3))
        self.writer.kick()

    def audit(self, tenant: str, actor: str, action: str, call_id: str, detail: str = "") -> str:
        """Record a supervisor action (listen, whisper, take_over, ...). Never blocks; never dropped."""
        aid = uuid.uuid4().hex
        self.log.audit({"audit_id": aid, "ts": int(time.time() * 1000), "tenant": tenant, "actor": actor,
                        "action": action, "call_id": call_id, "detail": detail, "worker": self.worker_id})
        self.writer.kick()
        return aid

    # ---- policy ------------------------------------------------------------------------------
    async def policy_for(self, info: CallInfo) -> PolicySettings:
        key = (info.tenant, info.callee)
        if not self.writer.connected:  # Redis known to be away: no wait at call start
            return self._policy_cache.get(key) or DEFAULT_POLICY.to_settings(self.base_settings)
        try:
            resolved = await asyncio.wait_for(self.policies.resolve(info.tenant, info.callee), self.settings.op_timeout)
            settings = resolved.policy.to_settings(self.base_settings)
            self._policy_cache[key] = settings
            return settings
        except (*TRANSIENT, asyncio.TimeoutError) as e:
            log.warning("state: policy lookup failed (%r); using last known or defaults", e)
            return self._policy_cache.get(key) or DEFAULT_POLICY.to_settings(self.base_settings)

    def watch_policy(self, info: CallInfo, callback: Callable[[PolicySettings], None]) -> Callable[[], None]:
        """Call `callback(settings)` whenever this call's effective policy changes. Returns unsubscribe."""
        return self.watcher.watch(info, callback, self._policy_cache.get((info.tenant, info.callee)))

    # ---- views -------------------------------------------------------------------------------
    async def live_calls(self, tenant: str | None = None) -> list[dict]:
        return await self.liveness.live_calls(tenant)

    def stats(self) -> dict[str, Any]:
        return {
            "worker": self.worker_id, "connected": self.writer.connected, "live_calls": len(self._calls),
            "pending": len(self.log), "events_pending": self.log.events_pending, "accepted": self.log.accepted,
            "written": self.writer.written, "duplicates": self.writer.duplicates, "dropped": self.log.dropped,
            "dropped_by_type": dict(self.log.dropped_by_type), "suppressed": self.log.suppressed,
            "write_failures": self.writer.failures, "write_errors": self.writer.errors,
            "reaped": self.liveness.reaped, "policy_watch_errors": self.watcher.errors,
        }
