"""One call's audit trail, in order, from what the store keeps (`duplexbot trace`).

A trace merges four sources into one timeline: the call's event stream (every decision with its
time, confidence and policy; actions such as transfers), its transcript stream (what was said
and what the caller actually heard, interrupted bot turns marked), the supervisor actions of the
global audit stream that name the call, and the call record itself (header). `build_trace` and
the formatters are pure; `load_trace` / `recent_calls` are the thin Redis readers.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from .keys import Keys, as_text, for_display, is_hashed, key_part

StreamEntry = tuple[str, dict[str, str]]
_AUDIT_PAGE = 1000
_AUDIT_SCAN_MAX = 100_000  # audit entries looked at per trace (a year of audit can be large)
_SCAN_MAX = 200_000  # keys looked at when listing calls or searching by a displayed id
_HIDDEN_DATA = frozenset({"mono"})
_TRANSCRIPT_EVENTS = frozenset({"transcript_final", "transcript_partial"})  # shown from the transcript


@dataclass(frozen=True)
class TraceLine:
    ts: int  # ms since the epoch
    kind: str  # "decision" | "event" | "action" | "transcript" | "audit"
    what: str  # event type, speaker, or supervisor action
    seq: int | None = None
    decision: str = ""
    confidence: str = ""
    policy: str = ""
    text: str = ""  # the human detail (transcript text, action target, ...), not escaped
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ts": self.ts, "kind": self.kind, "what": self.what, "seq": self.seq, "decision": self.decision,
                "confidence": self.confidence, "policy": self.policy, "text": self.text, "data": dict(self.data)}


@dataclass(frozen=True)
class Trace:
    call_id: str  # the original id as stored (valid text; `for_display` escapes it)
    key: str  # its key part (`h-...` for ids that are not plainly safe)
    record: dict[str, str]
    lines: tuple[TraceLine, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "key": self.key, "record": dict(self.record),
                "lines": [line.to_dict() for line in self.lines]}


# ---- pure ----------------------------------------------------------------------------------------
def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _entry_ms(eid: str) -> int:
    return _int(eid.split("-", 1)[0]) or 0


def _data(raw: str) -> dict[str, Any]:
    try:
        d = json.loads(raw) if raw else {}
    except ValueError:
        return {"data": raw}
    return {k: v for k, v in d.items() if k not in _HIDDEN_DATA} if isinstance(d, dict) else {"data": d}


def _event_line(eid: str, f: dict[str, str]) -> TraceLine | None:
    kind = f.get("type", "")
    if kind in _TRANSCRIPT_EVENTS:
        return None
    data = _data(f.get("data", ""))
    decision = f.get("decision", "")
    if kind == "action":
        line_kind = "action"
        text = " ".join(str(x) for x in (data.get("name", ""), data.get("target", "")) if x)
        if data.get("ok") is False:
            text += " (failed)"
    else:
        line_kind = "decision" if decision else "event"
        text = " ".join(f"{k}={json.dumps(v, ensure_ascii=False) if isinstance(v, str) else v}"
                        for k, v in sorted(data.items()))
    return TraceLine(_int(f.get("ts")) or _entry_ms(eid), line_kind, kind, _int(f.get("seq")), decision,
                     f.get("confidence", ""), f.get("policy", ""), text, data)


def _transcript_line(eid: str, f: dict[str, str]) -> TraceLine:
    speaker = f.get("speaker", "")
    what = f"{speaker} said" + (" (interrupted; as heard)" if f.get("interrupted") == "1" else "")
    return TraceLine(_int(f.get("ts")) or _entry_ms(eid), "transcript", what, _int(f.get("seq")),
                     text=f.get("text", ""), data={"speaker": speaker, "interrupted": f.get("interrupted") == "1"})


def _audit_line(eid: str, f: dict[str, str]) -> TraceLine:
    data = {k: v for k, v in f.items() if k in ("actor", "tenant", "detail", "worker", "audit_id")}
    text = f"by {f.get('actor', '?')}" + (f": {f['detail']}" if f.get("detail") else "")
    return TraceLine(_int(f.get("ts")) or _entry_ms(eid), "audit", f.get("action", ""), text=text, data=data)


def build_trace(call_id: str, key: str, record: dict[str, str], events: list[StreamEntry],
                transcript: list[StreamEntry], audit: list[StreamEntry]) -> Trace:
    """Merge the sources into one timeline: by time, then by the call's seq (a transcript line
    follows the event it came from), supervisor actions in their stream order."""
    lines: list[tuple[int, int, int, int, TraceLine]] = []
    for n, (eid, f) in enumerate(events):
        line = _event_line(eid, f)
        if line is not None:
            lines.append((line.ts, line.seq or 0, 0, n, line))
    for n, (eid, f) in enumerate(transcript):
        line = _transcript_line(eid, f)
        lines.append((line.ts, line.seq or 0, 1, n, line))
    want = as_text(call_id)
    for n, (eid, f) in enumerate(audit):
        if f.get("call_id") == want:
            line = _audit_line(eid, f)
            lines.append((line.ts, 1 << 62, 2, n, line))
    lines.sort(key=lambda x: x[:4])
    return Trace(want, key, dict(record), tuple(x[-1] for x in lines))


def _clock(ms: int | None) -> str:
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) + f".{ms % 1000:03d}"


def format_trace(trace: Trace) -> str:
    """Readable lines: a header from the call record, then one line per entry (ids and text escaped)."""
    r = trace.record
    head = [f"call {for_display(trace.call_id)}" + (f"   (key {trace.key})" if trace.key != trace.call_id else "")]
    facts = [f"{k}={for_display(r[k])}" for k in ("state", "tenant", "transport", "caller", "callee", "worker",
                                                   "end_reason") if r.get(k)]
    if facts:
        head.append("  " + " ".join(facts))
    started, ended = _int(r.get("started")), _int(r.get("ended"))
    head.append(f"  started {_clock(started)}" + (f"  ended {_clock(ended)}" if ended else ""))
    if not trace.lines:
        return "\n".join(head + ["  (no events stored for this call)"])
    t0 = started or trace.lines[0].ts
    out = head + [f"  {'TIME':>10}  {'SEQ':>4}  {'WHAT':<34} {'DECISION':<12} {'CONF':<6} {'POLICY':<12} DETAIL"]
    for line in trace.lines:
        rel = f"+{(line.ts - t0) / 1000:.3f}s"
        seq = "" if line.seq is None else str(line.seq)
        what = ("audit " if line.kind == "audit" else "") + line.what
        out.append(f"  {rel:>10}  {seq:>4}  {for_display(what):<34} {for_display(line.decision):<12} "
                   f"{for_display(line.confidence):<6} {for_display(line.policy):<12} "
                   f"{for_display(line.text)}".rstrip())
    return "\n".join(out)


def format_recent(calls: list[dict[str, str]]) -> str:
    if not calls:
        return "no calls stored"
    out = [f"{'STARTED':<23}  {'STATE':<6} {'TENANT':<12} CALL ID (key when hashed)"]
    for c in calls:
        key = c.get("key", "")
        cid = c.get("call_id", "")
        out.append(f"{_clock(_int(c.get('started'))):<23}  {for_display(c.get('state', '')):<6} "
                   f"{for_display(c.get('tenant', '')):<12} {for_display(cid)}" + (f"   ({key})" if key != cid else ""))
    return "\n".join(out)


# ---- Redis readers -------------------------------------------------------------------------------
def _decode_entries(entries: Any) -> list[StreamEntry]:
    return [(as_text(eid), {as_text(k): as_text(v) for k, v in (fields or {}).items()})
            for eid, fields in entries or []]


async def _stream(redis: Any, key: str, start: str = "-", count: int | None = None) -> list[StreamEntry]:
    return _decode_entries(await redis.xrange(key, min=start, max="+", count=count))


async def _record_parts(redis: Any, keys: Keys) -> list[str]:
    """The key parts of every stored call record (`{p}:call:<part>`, no further ':')."""
    prefix = keys.call_at("")
    parts: list[str] = []
    seen = 0
    async for raw in redis.scan_iter(match=f"{prefix}*", count=1000):
        seen += 1
        rest = as_text(raw)[len(prefix):]
        if rest and ":" not in rest:
            parts.append(rest)
        if seen >= _SCAN_MAX:
            break
    return parts


async def find_call(redis: Any, keys: Keys, call_id: str) -> str | None:
    """The key part of the call the user named: by its id, by its `h-...` key, or by the id as
    the console displays it (an id with undecodable bytes or controls). None when not stored."""
    async def stored(part: str) -> bool:
        return bool(await redis.exists(keys.call_at(part), keys.call_at(part) + ":events"))

    part = key_part(call_id)
    if await stored(part):
        return part
    if is_hashed(call_id) and await stored(call_id):
        return call_id
    wanted = {as_text(call_id), for_display(call_id)}
    for part in await _record_parts(redis, keys):
        cid = as_text(await redis.hget(keys.call_at(part), "call_id") or b"")
        if cid in wanted or for_display(cid) in wanted:
            return part
    return None


async def load_trace(redis: Any, keys: Keys, call_id: str) -> Trace | None:
    part = await find_call(redis, keys, call_id)
    if part is None:
        return None
    base = keys.call_at(part)
    record = {as_text(k): as_text(v) for k, v in (await redis.hgetall(base)).items()}
    events = await _stream(redis, base + ":events")
    transcript = await _stream(redis, base + ":transcript")
    cid = record.get("call_id") or next((f["call_id"] for _, f in events if f.get("call_id")), None) or as_text(call_id)
    first = _int(record.get("started")) or (_entry_ms(events[0][0]) if events else 0)
    start = f"{max(0, first - 60_000)}-0" if first else "-"
    audit: list[StreamEntry] = []
    while len(audit) < _AUDIT_SCAN_MAX:  # paged: only this call's time onwards
        page = await _stream(redis, keys.audit, start, _AUDIT_PAGE)
        audit += [e for e in page if e[1].get("call_id") == cid]
        if len(page) < _AUDIT_PAGE:
            break
        start = "(" + page[-1][0]
    return build_trace(cid, part, record, events, transcript, audit)


async def recent_calls(redis: Any, keys: Keys, n: int = 20) -> list[dict[str, str]]:
    """The latest `n` stored calls (live or ended), newest first, each record with its `key`."""
    parts = await _record_parts(redis, keys)
    out: list[dict[str, str]] = []
    for i in range(0, len(parts), 500):
        chunk = parts[i:i + 500]
        async with redis.pipeline(transaction=False) as p:
            for part in chunk:
                p.hgetall(keys.call_at(part))
            got = await p.execute(raise_on_error=False)
        for part, rec in zip(chunk, got):
            if isinstance(rec, dict) and rec:
                d = {as_text(k): as_text(v) for k, v in rec.items()}
                d.setdefault("call_id", part)
                d["key"] = part
                out.append(d)
    out.sort(key=lambda d: (_int(d.get("started")) or 0, d["key"]), reverse=True)
    return out[:max(0, n)]
