"""Where poisoned items go: an op or stream entry that failed to serialise or write several times
in a row is set aside in the `{p}:quarantine` stream (bounded, with the events' retention) so the
loop that choked on it can go on with the next one. The record is built to be storable whatever
the item held (ASCII JSON, repr as a last resort); when even that write fails the item is dropped
and counted (`duplexbot_state_events_dropped`).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any

from . import counters
from .keys import as_text

log = logging.getLogger(__name__)

MAXLEN = 10_000  # quarantine entries kept (approximate)
TRIES = 3  # attempts at one item before it is quarantined


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name != "done"}  # an op's future is no data
    if isinstance(value, dict):
        return {as_text(str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return as_text(value)
    if isinstance(value, str):
        return as_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return repr(value)


def record(source: str, item: Any, error: BaseException | str, call_id: Any = "") -> dict[str, str]:
    """The quarantine entry for `item` (pure; every value valid text)."""
    try:
        body = json.dumps(_plain(item), separators=(",", ":"), sort_keys=True, default=repr)
    except (TypeError, ValueError, RecursionError):
        body = json.dumps(repr(item))
    return {"ts": str(int(time.time() * 1000)), "source": source, "kind": type(item).__name__,
            "call_id": as_text(call_id if isinstance(call_id, (str, bytes)) else str(call_id)),
            "error": as_text(error if isinstance(error, str) else f"{type(error).__name__}: {error}")[:2000],
            "item": body}


async def quarantine(redis: Any, stream: str, ttl: int, source: str, item: Any, error: BaseException | str,
                     call_id: Any = "") -> bool:
    """Set `item` aside; True when stored. Never raises (a failure is dropped and counted)."""
    try:
        async with redis.pipeline(transaction=False) as p:
            p.xadd(stream, record(source, item, error, call_id), maxlen=MAXLEN, approximate=True)
            p.expire(stream, ttl)
            await p.execute()
    except Exception as e:
        counters.EVENTS_DROPPED.inc()
        log.error("state: could not quarantine a poisoned %s from %s (%r); dropped", type(item).__name__, source, e)
        return False
    counters.EVENTS_QUARANTINED.inc()
    log.error("state: quarantined a poisoned %s from %s (call %r) after %s: %s", type(item).__name__, source,
              as_text(call_id if isinstance(call_id, (str, bytes)) else str(call_id))[:80], type(error).__name__, error)
    return True
