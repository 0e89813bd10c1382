"""Redis key names, in one place. Every key class but policies carries a TTL (see docs/state.md).

    {p}:call:{id}              hash    call record (state, rev, tenant, worker, times ...)  retention.events
    {p}:call:{id}:events       stream  the call's engine events (seq, type, decision, confidence)  retention.events
    {p}:call:{id}:transcript   stream  what was said and actually heard (redacted)  retention.transcripts
    {p}:call:{id}:recording    hash    consent record and recording metadata  retention.recordings
    {p}:events                 stream  every call's events (trimmed by age)  retention.events
    {p}:audit                  stream  supervisor listen/whisper/take-over ...  retention.audit
    {p}:live                   zset    live call id -> heartbeat deadline (ms)  retention.events
    {p}:worker:{wid}           hash    a worker's heartbeat  heartbeat_ttl
    {p}:policy:tenant:{t}      string  JSON overrides  (configuration: no TTL)
    {p}:policy:number:{n}      string  JSON overrides  (configuration: no TTL)
    {p}:policy:changed         pub/sub channel
"""
from __future__ import annotations

from dataclasses import dataclass


def _check(part: str, what: str) -> str:
    # Call ids come from the wire (SIP Call-IDs may hold ':', '@', '*'): keys take them as they are,
    # refusing only what no sane id holds.
    if not isinstance(part, str) or not part or len(part) > 256 or not part.isprintable():
        raise ValueError(f"invalid {what} {part!r} for a Redis key")
    return part


@dataclass(frozen=True)
class Keys:
    prefix: str

    def call(self, call_id: str) -> str:
        return f"{self.prefix}:call:{_check(call_id, 'call id')}"

    def call_events(self, call_id: str) -> str:
        return f"{self.call(call_id)}:events"

    def transcript(self, call_id: str) -> str:
        return f"{self.call(call_id)}:transcript"

    def recording(self, call_id: str) -> str:
        return f"{self.call(call_id)}:recording"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def audit(self) -> str:
        return f"{self.prefix}:audit"

    @property
    def live(self) -> str:
        return f"{self.prefix}:live"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{_check(worker_id, 'worker id')}"

    def policy_tenant(self, tenant: str) -> str:
        return f"{self.prefix}:policy:tenant:{_check(tenant, 'tenant')}"

    def policy_number(self, number: str) -> str:
        return f"{self.prefix}:policy:number:{_check(number, 'number')}"

    @property
    def policy_channel(self) -> str:
        return f"{self.prefix}:policy:changed"

    def policy_pattern(self) -> str:
        return f"{self.prefix}:policy:*"
