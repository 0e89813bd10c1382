"""Barge-in policies in Redis: per tenant and per dialled number, validated on write, published on
change so live calls pick them up within a second.

Resolution for a call: built-in defaults <- tenant overrides <- dialled-number overrides.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..engine.port import CallInfo
from ..policy.base import PolicySettings
from .keys import Keys, as_text, is_hashed, key_part
from .policy import DEFAULT_POLICY, BargeInPolicy, PolicyError, decode_overrides, encode_overrides, validate_overrides
from .tasks import stop_task, stopping

log = logging.getLogger(__name__)


def normalise_number(number: str) -> str:
    """A dialled number as a key part: 'tel:'/'sip:' and separators dropped ('+1 555-0100' -> '+15550100')."""
    n = number.strip()
    for scheme in ("tel:", "sip:", "sips:"):
        if n.lower().startswith(scheme):
            n = n[len(scheme):]
    n = n.split("@", 1)[0].split(";", 1)[0]
    return "".join(c for c in n if c not in " -().")


@dataclass(frozen=True)
class Scope:
    """Where a policy applies: a tenant, or one dialled number."""
    tenant: str | None = None
    number: str | None = None

    def __post_init__(self) -> None:
        if (self.tenant is None) == (self.number is None):
            raise PolicyError("a policy scope is exactly one of a tenant or a dialled number")

    def key(self, keys: Keys) -> str:
        if self.tenant is not None:
            return keys.policy_tenant(self.tenant)
        return keys.policy_number(normalise_number(self.number or ""))

    def to_dict(self) -> dict[str, str]:
        return {"tenant": self.tenant} if self.tenant is not None else {"number": normalise_number(self.number or "")}

    def name(self) -> str:
        """The tenant or normalised number: the part of the key `key()` may have hashed."""
        return self.tenant if self.tenant is not None else normalise_number(self.number or "")


@dataclass(frozen=True)
class ResolvedPolicy:
    policy: BargeInPolicy
    sources: dict[str, str] = field(default_factory=dict)  # field -> "default" | "tenant:x" | "number:y"

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.to_dict(), "sources": dict(self.sources)}


class PolicyStore:
    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def set(self, scope: Scope, overrides: Mapping[str, Any], replace: bool = False) -> dict[str, Any]:
        """Merge (or replace with) `overrides` at `scope`; validated before anything is written.
        Publishes the change. Returns the scope's stored overrides."""
        new = validate_overrides(overrides)
        key = scope.key(self.keys)
        current = {} if replace else decode_overrides(await self.redis.get(key))
        current.update(new)
        DEFAULT_POLICY.merged(current)  # the whole policy must be valid too
        name = scope.name()
        hashed = key_part(name) != name  # an odd name: remember it, `list` shows it, not the hash
        async with self.redis.pipeline(transaction=True) as p:
            if current:
                p.set(key, encode_overrides(current))
                if hashed:
                    p.hset(self.keys.policy_index, key_part(name), as_text(name))
            else:
                p.delete(key)
                if hashed:
                    p.hdel(self.keys.policy_index, key_part(name))
            await p.execute()
        await self.redis.publish(self.keys.policy_channel, json.dumps(scope.to_dict()))
        return current

    async def clear(self, scope: Scope, names: list[str] | None = None) -> dict[str, Any]:
        """Remove the named overrides (all when `names` is None) at `scope`."""
        key = scope.key(self.keys)
        current = decode_overrides(await self.redis.get(key))
        if names is None:
            current = {}
        else:
            unknown = [n for n in names if n not in BargeInPolicy.field_names()]
            if unknown:
                raise PolicyError(f"unknown policy field(s) {', '.join(unknown)}; "
                                  f"known: {', '.join(BargeInPolicy.field_names())}")
            for n in names:
                current.pop(n, None)
        return await self.set(scope, current, replace=True)

    async def resolve(self, tenant: str, number: str = "") -> ResolvedPolicy:
        keys = [self.keys.policy_tenant(tenant)]
        num = normalise_number(number) if number else ""
        if num:
            keys.append(self.keys.policy_number(num))
        raws = await self.redis.mget(keys)
        policy = DEFAULT_POLICY
        sources = {n: "default" for n in BargeInPolicy.field_names()}
        for label, raw in zip((f"tenant:{tenant}", f"number:{num}"), raws):
            try:
                over = decode_overrides(raw)
            except (PolicyError, ValueError) as e:  # a bad stored value must not break calls
                log.error("state: ignoring invalid stored policy %s: %s", label, e)
                continue
            policy = policy.merged(over)
            sources.update({n: label for n in over})
        return ResolvedPolicy(policy, sources)

    async def list(self) -> list[dict[str, Any]]:
        """Every stored override set: [{"tenant"|"number": ..., "overrides": {...}}]."""
        out = []
        prefix_t = self.keys.policy_tenant("x")[:-1]
        prefix_n = self.keys.policy_number("x")[:-1]
        names = {as_text(k): as_text(v) for k, v in (await self.redis.hgetall(self.keys.policy_index)).items()}
        async for raw_key in self.redis.scan_iter(match=f"{self.keys.prefix}:policy:*", count=500):
            key = as_text(raw_key)
            if key.startswith(prefix_t):
                kind, part = "tenant", key[len(prefix_t):]
            elif key.startswith(prefix_n):
                kind, part = "number", key[len(prefix_n):]
            else:
                continue
            scope = {kind: names.get(part, part) if is_hashed(part) else part}
            try:
                over = decode_overrides(await self.redis.get(key))
            except (PolicyError, ValueError) as e:
                over = {"error": str(e)}
            out.append({**scope, "overrides": over})
        return sorted(out, key=lambda d: (0 if "tenant" in d else 1, d.get("tenant") or d.get("number") or ""))


@dataclass
class _Watch:
    info: CallInfo
    callback: Callable[[PolicySettings], None]
    last: PolicySettings | None = None


class PolicyWatcher:
    """One pub/sub subscription per process; re-resolves the affected calls' policies on change
    and calls their callbacks when the thresholds actually changed. After a lost connection it
    re-resolves every watched call (a change may have been missed)."""

    def __init__(self, store: PolicyStore, base: PolicySettings | None = None) -> None:
        self.store = store
        self.base = base
        self._watches: dict[int, _Watch] = {}
        self._next = 0
        self._task: asyncio.Task | None = None
        self._pending: set[asyncio.Task] = set()
        self.subscribed = asyncio.Event()
        self.errors = 0

    def watch(self, info: CallInfo, callback: Callable[[PolicySettings], None],
              current: PolicySettings | None = None) -> Callable[[], None]:
        self._next += 1
        wid = self._next
        w = self._watches[wid] = _Watch(info, callback, current)
        if self._task is not None:
            # A change between the caller's policy lookup and this registration would be missed:
            # look once more now.
            t = asyncio.get_running_loop().create_task(self._refresh(lambda x: x is w))
            self._pending.add(t)
            t.add_done_callback(self._pending.discard)

        def unwatch() -> None:
            self._watches.pop(wid, None)
        return unwatch

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="policy-watcher")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        for t in list(self._pending):
            await stop_task(t)

    async def _run(self) -> None:
        backoff = 0.05
        first = True
        while not stopping():
            pubsub = self.store.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.store.keys.policy_channel)
                self.subscribed.set()
                if not first:
                    await self._refresh(lambda w: True)
                first = False
                backoff = 0.05
                while not stopping():
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    await self._refresh(self._matcher(msg.get("data")))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # connection lost: resubscribe with backoff
                if stopping():
                    raise asyncio.CancelledError from e
                self.errors += 1
                self.subscribed.clear()
                log.debug("policy watcher: %r", e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            finally:
                try:
                    await asyncio.wait_for(pubsub.aclose(), 1.0)
                except Exception:
                    pass

    @staticmethod
    def _matcher(data: Any) -> Callable[[_Watch], bool]:
        try:
            scope = json.loads(data)
        except (TypeError, ValueError):
            return lambda w: True
        if "tenant" in scope:
            return lambda w: w.info.tenant == scope["tenant"]
        if "number" in scope:
            return lambda w: normalise_number(w.info.callee) == scope["number"]
        return lambda w: True

    async def _refresh(self, match: Callable[[_Watch], bool]) -> None:
        resolved: dict[tuple[str, str], PolicySettings] = {}  # one lookup per tenant + number
        for w in list(self._watches.values()):
            if not match(w):
                continue
            key = (w.info.tenant, normalise_number(w.info.callee) if w.info.callee else "")
            settings = resolved.get(key)
            if settings is None:
                try:
                    settings = (await self.store.resolve(*key)).policy.to_settings(self.base)
                except Exception as e:
                    if stopping():
                        raise asyncio.CancelledError from e
                    self.errors += 1
                    log.debug("policy watcher: resolve failed: %r", e)
                    continue
                resolved[key] = settings
            if settings != w.last:
                w.last = settings
                try:
                    w.callback(settings)
                except Exception:
                    log.exception("policy watcher: callback failed for %s", w.info.call_id)
