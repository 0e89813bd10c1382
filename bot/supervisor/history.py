"""Ended calls of one tenant, from what the state store keeps (bot/state: the call record, its event
stream, its transcript as heard, the audit stream and the recording record).

One call's history is its audit trail (`load_trace`, the same merge as `duplexbot trace CALL_ID`),
the engine events again in their wire form (stream time `t`, confidence, policy: what the
timeline draws), the transcript as the caller heard it, and the recording record. The bot records
no audio: the recording record holds the caller's consent answer, and a `uri` only where some
other component registered a recording (`CallStore.recording_saved`); there is no audio to
download here. Levels are not stored (bot/supervisor/levels.py): the worker that had the call
adds them while it still keeps them in memory.
"""
from __future__ import annotations

import json
from typing import Any

from ..state.keys import as_text
from ..state.store import CallStore
from ..state.trace import find_call, load_trace, recent_calls

MAX_LIST = 200
_SCAN = 5000  # stored call records looked at for a tenant's list


class HistoryError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _num(v: str) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def event_dict(fields: dict[str, str]) -> dict[str, Any]:
    """A stored event stream entry back in the engine's wire form (`Event.to_dict()`)."""
    try:
        rest = json.loads(fields.get("data") or "{}")
    except ValueError:
        rest = {}
    d: dict[str, Any] = rest if isinstance(rest, dict) else {}
    d["type"] = fields.get("type", "")
    d["call_id"] = fields.get("call_id", "")
    t, c = _num(fields.get("t", "")), _num(fields.get("confidence", ""))
    if t is not None:
        d["t"] = t
    if c is not None:
        d["confidence"] = c
    if fields.get("policy"):
        d["policy"] = fields["policy"]
    d["ts"] = int(_num(fields.get("ts", "")) or 0)
    return d


def _summary(rec: dict[str, str]) -> dict[str, Any]:
    started, ended = int(_num(rec.get("started", "")) or 0), int(_num(rec.get("ended", "")) or 0)
    return {"call_id": rec.get("call_id", ""), "transport": rec.get("transport", ""), "caller": rec.get("caller", ""),
            "callee": rec.get("callee", ""), "tenant": rec.get("tenant", ""), "worker": rec.get("worker", ""),
            "state": rec.get("state", ""), "started": started, "ended": ended,
            "seconds": round((ended - started) / 1000, 1) if started and ended >= started else None,
            "end_reason": rec.get("end_reason", "")}


class CallHistory:
    def __init__(self, store: CallStore | None) -> None:
        self.store = store

    def _need(self) -> CallStore:
        if self.store is None:
            raise HistoryError(503, "call history needs the state store (DUPLEXBOT_STATE=1)")
        return self.store

    async def ended_calls(self, tenant: str, limit: int = 50) -> list[dict[str, Any]]:
        store = self._need()
        recs = await recent_calls(store.redis, store.keys, _SCAN)
        out = [_summary(r) for r in recs if r.get("tenant") == tenant and r.get("state") == "ended"]
        return out[:max(1, min(limit, MAX_LIST))]

    async def call(self, tenant: str, call_id: str) -> dict[str, Any]:
        """The stored call, if it is this tenant's: HistoryError 404 when not stored, 403 when it
        is another tenant's (the caller audits that)."""
        store = self._need()
        part = await find_call(store.redis, store.keys, call_id)
        if part is None:
            raise HistoryError(404, "no such call in the history")
        base = store.keys.call_at(part)
        record = {as_text(k): as_text(v) for k, v in (await store.redis.hgetall(base)).items()}
        if record.get("tenant") != tenant:
            raise HistoryError(403, "this call belongs to another tenant")
        trace = await load_trace(store.redis, store.keys, record.get("call_id") or call_id)
        raw = await store.redis.xrange(base + ":events", min="-", max="+")
        events = [event_dict({as_text(k): as_text(v) for k, v in (f or {}).items()}) for _, f in raw or []]
        recording = {as_text(k): as_text(v)
                     for k, v in (await store.redis.hgetall(store.keys.recording(record.get("call_id") or call_id)))
                     .items()}
        lines = trace.lines if trace is not None else ()
        transcript = [{"speaker": ln.data.get("speaker", ""), "text": ln.text, "ts": ln.ts,
                       "interrupted": bool(ln.data.get("interrupted"))} for ln in lines if ln.kind == "transcript"]
        audit = [{"ts": ln.ts, "action": ln.what, "actor": ln.data.get("actor", ""),
                  "detail": ln.data.get("detail", "")} for ln in lines if ln.kind == "audit"]
        return {"call": _summary(record), "record": record, "events": events, "transcript": transcript,
                "audit": audit, "trace": [ln.to_dict() for ln in lines],
                "recording": {"record": recording, "audio": None,
                              "why": "this bot stores no call audio; the record holds the consent answer"
                              + (" and a recording registered elsewhere" if recording.get("uri") else "")}}
