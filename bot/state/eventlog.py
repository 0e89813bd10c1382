"""The event log's sans-IO core: turns engine events into ordered, idempotent write operations.

`EventLog` never touches Redis. It numbers each call's records (seq 1, 2, ...; the Redis script
refuses any seq it has already stored, so a retried batch never duplicates), applies privacy rules
(redaction, secure input), builds the transcript of what the caller actually heard, and keeps a
bounded queue of pending operations with counters of anything dropped. `writer.py` drains it.
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable

from ..engine.events import BotTruncated, DtmfReceived, Event, TranscriptFinal, TranscriptPartial
from .keys import as_text
from .redact import redact

# Why the bot did what it did, per event type (shown in the console and kept in the stream).
DECISIONS: dict[str, str] = {
    "end_of_turn": "take_turn",
    "hold": "wait",
    "barge_in": "stop",
    "backchannel": "continue",
    "false_barge_in": "resume",
    "backchannel_opportunity": "backchannel",
}
_TOP_FIELDS = frozenset({"call_id", "type", "t", "confidence", "policy"})
_TEXT_FIELDS = ("text", "heard", "unheard", "resumed_text", "message", "detail", "reason")


@dataclass(frozen=True)
class EventOp:
    """One record for a call's event stream (and the global stream), maybe a transcript line."""
    call_id: str
    seq: int
    fields: dict[str, str]
    transcript: dict[str, str] | None = None


@dataclass(frozen=True)
class CallOp:
    """A call-record transition (state '' keeps the state, just updates fields)."""
    call_id: str
    rev: int
    state: str
    fields: dict[str, str]
    done: Any = None  # an asyncio.Future the writer resolves (opaque here)


@dataclass(frozen=True)
class AuditOp:
    fields: dict[str, str]


@dataclass(frozen=True)
class RecordingOp:
    call_id: str
    fields: dict[str, str]


Op = EventOp | CallOp | AuditOp | RecordingOp


@dataclass
class _CallLog:
    seq: int = 0
    rev: int = 0
    secure: bool = False
    truncated_heard: str | None = None  # heard text of the last interrupted bot turn
    dropped: int = 0
    suppressed: int = 0


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _event_dict(event: Event) -> dict[str, Any]:
    """`event.to_dict()`, without the deep copy of `asdict` when the class keeps the base
    `to_dict` (engine events hold scalars only)."""
    cls = type(event)
    if cls.to_dict is not Event.to_dict:
        return event.to_dict()
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    d = {n: getattr(event, n) for n in names}
    d["type"] = event.type
    d["t"] = round(event.t, 4)
    d["mono"] = round(event.mono, 6)
    return d


def _fmt(v: Any) -> str:
    """A field value for Redis: always valid text (wire ids may carry undecodable bytes)."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(round(v, 6))
    return as_text(v if isinstance(v, (str, bytes)) else str(v))


class EventLog:
    """Pending writes, in order. `buffer_max` bounds the droppable event records; call
    transitions and audit records are never dropped (they are few)."""

    def __init__(self, buffer_max: int, clock: Callable[[], float] = time.time) -> None:
        self.buffer_max = buffer_max
        self._clock = clock
        self._ops: deque[Op] = deque()
        self._events_pending = 0
        self._calls: dict[str, _CallLog] = {}
        # Ended calls keep their counters a while: an event emitted after call_ended() must get
        # the next seq, not seq 1 (which Redis would refuse as a duplicate).
        self._ended: OrderedDict[str, _CallLog] = OrderedDict()
        self.ended_keep = 4096
        self.dropped = 0  # event records refused because the buffer was full
        self.dropped_by_type: dict[str, int] = {}
        self.suppressed = 0  # records withheld by secure input
        self.accepted = 0

    # ---- calls -------------------------------------------------------------------------------
    def _call(self, call_id: str) -> _CallLog:
        c = self._calls.get(call_id)
        if c is None:
            c = self._ended.pop(call_id, None) or _CallLog()
            self._calls[call_id] = c
        return c

    def transition(self, call_id: str, state: str, fields: dict[str, Any], done: Any = None) -> CallOp:
        c = self._call(call_id)
        c.rev += 1
        op = CallOp(call_id, c.rev, state, {k: _fmt(v) for k, v in fields.items()}, done)
        self._ops.append(op)
        return op

    def forget(self, call_id: str) -> _CallLog | None:
        """Retire per-call bookkeeping once a call has ended (its ops stay queued)."""
        c = self._calls.pop(call_id, None)
        if c is not None:
            c.secure = False
            c.truncated_heard = None
            self._ended[call_id] = c
            while len(self._ended) > self.ended_keep:
                self._ended.popitem(last=False)
        return c

    def set_secure(self, call_id: str, on: bool) -> bool:
        """Returns True when the mode changed."""
        c = self._call(call_id)
        if c.secure == on:
            return False
        c.secure = on
        self.note(call_id, "secure_input", on=on)
        return True

    def is_secure(self, call_id: str) -> bool:
        c = self._calls.get(call_id)
        return bool(c and c.secure)

    def call_counters(self, call_id: str) -> dict[str, int]:
        c = self._calls.get(call_id)
        return {"dropped": c.dropped, "suppressed": c.suppressed} if c else {"dropped": 0, "suppressed": 0}

    # ---- events ------------------------------------------------------------------------------
    def add(self, event: Event) -> EventOp | None:
        """Queue one engine event. Returns the op, or None when withheld or dropped."""
        c = self._call(event.call_id)
        if c.secure and isinstance(event, (TranscriptPartial, TranscriptFinal)):
            c.suppressed += 1
            self.suppressed += 1
            return None
        d = _event_dict(event)
        if isinstance(event, DtmfReceived) and c.secure:
            d["digit"] = ""  # the digit never leaves the process
            d["secure"] = True
        transcript = self._transcript_line(c, event)
        return self._push(c, event.call_id, event.type, d, transcript)

    def note(self, call_id: str, kind: str, **data: Any) -> EventOp | None:
        """A store-level record (secure_input, consent, ...) in the call's event stream."""
        c = self._call(call_id)
        d = {"type": kind, "call_id": call_id, **data}
        return self._push(c, call_id, kind, d, None)

    def _push(self, c: _CallLog, call_id: str, kind: str, d: dict[str, Any],
              transcript: dict[str, str] | None) -> EventOp | None:
        if self._events_pending >= self.buffer_max:
            # The seq is spent all the same: a consumer sees the gap where events were lost.
            c.seq += 1
            self.dropped += 1
            c.dropped += 1
            self.dropped_by_type[kind] = self.dropped_by_type.get(kind, 0) + 1
            return None
        for k in _TEXT_FIELDS:
            if isinstance(d.get(k), str):
                d[k] = redact(d[k])
        c.seq += 1
        ts = int(self._clock() * 1000)
        # The same fields in the same order on every entry: Redis stores a stream's field names once
        # per node when entries share them. `data` holds the rest of the event.
        decision = DECISIONS.get(kind) or (str(d.get("reason", "")) if kind == "bot_speech_stop" else "")
        rest = {k: v for k, v in d.items() if k not in _TOP_FIELDS}
        fields = {
            "call_id": as_text(call_id), "seq": str(c.seq), "type": _fmt(kind), "ts": str(ts),
            "t": _fmt(d["t"]) if "t" in d else "", "decision": _fmt(decision),
            "confidence": _fmt(d["confidence"]) if "confidence" in d else "",
            "policy": _fmt(d.get("policy") or ""),
            # ASCII JSON (surrogates escaped); a value JSON cannot hold is kept as its repr
            "data": json.dumps(rest, separators=(",", ":"), sort_keys=True, default=repr),
        }
        if transcript is not None:
            transcript = {"seq": str(c.seq), "ts": str(ts), **transcript}
        op = EventOp(call_id, c.seq, fields, transcript)
        self._ops.append(op)
        self._events_pending += 1
        self.accepted += 1
        return op

    def _transcript_line(self, c: _CallLog, event: Event) -> dict[str, str] | None:
        """Only what was said and actually heard. The engine emits a `transcript_final` for each
        caller utterance and for each bot turn as heard (the whole turn, or for an interrupted
        turn only the `heard` part of its `bot_truncated`, which comes first and marks the line
        `interrupted`). While secure input is on nothing is written."""
        if isinstance(event, BotTruncated):
            c.truncated_heard = event.heard.strip()
            return None
        if not isinstance(event, TranscriptFinal) or c.secure or not event.text.strip():
            return None
        line = {"speaker": _fmt(event.speaker), "t": _fmt(event.t), "text": _fmt(redact(event.text))}
        if event.speaker == "bot" and c.truncated_heard is not None:
            if event.text.strip() == c.truncated_heard:
                line["interrupted"] = "1"
            c.truncated_heard = None
        return line

    def audit(self, fields: dict[str, Any]) -> AuditOp:
        op = AuditOp({k: redact(_fmt(v)) if k in _TEXT_FIELDS else _fmt(v) for k, v in fields.items()})
        self._ops.append(op)
        return op

    def recording(self, call_id: str, fields: dict[str, Any]) -> RecordingOp:
        op = RecordingOp(call_id, {k: _fmt(v) for k, v in fields.items()})
        self._ops.append(op)
        return op

    # ---- draining ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ops)

    @property
    def events_pending(self) -> int:
        return self._events_pending

    def peek(self, batch_max: int) -> list[Op]:
        """The next ops to write, in order: a run of up to `batch_max` EventOps, or one other op."""
        if not self._ops:
            return []
        first = self._ops[0]
        if not isinstance(first, EventOp):
            return [first]
        out: list[Op] = []
        for op in self._ops:
            if not isinstance(op, EventOp) or len(out) >= batch_max:
                break
            out.append(op)
        return out

    def commit(self, n: int) -> None:
        """The first `n` ops are stored (or given up on)."""
        for _ in range(n):
            op = self._ops.popleft()
            if isinstance(op, EventOp):
                self._events_pending -= 1
