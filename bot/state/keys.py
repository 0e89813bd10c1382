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
    {p}:policy:index           hash    hashed tenant/number key part -> the original name
    {p}:policy:changed         pub/sub channel
    {p}:quarantine             stream  ops and stream entries that failed repeatedly  retention.events

Identifiers are data: a Call-ID, tenant or number of any length and any content (binary garbage
from a SIP peer included) maps to a key through `key_part`. Short ids made only of plainly safe
characters stay as they are (readable keys); anything else becomes `h-<128-bit sha256 prefix>`.
The live set holds key parts, and the call record keeps the original id (`as_text`) for consoles.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# No ':' (our separator: 'a:events' would collide with call 'a''s stream), no glob characters
# (SCAN patterns), no '{' '}' (cluster hash tags), no spaces or controls, nothing non-ASCII.
_SAFE = re.compile(r"[A-Za-z0-9._@+=%~!$&'(),;/-]{1,128}")
_HASHED = "h-"


def id_bytes(value: str | bytes) -> bytes:
    """The id's bytes as they came off the wire (text decoded with surrogateescape round-trips)."""
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        value = str(value)
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that did not come from surrogateescape
        return value.encode("utf-8", "surrogatepass")


def key_part(value: str | bytes) -> str:
    """A Redis key fragment for any identifier: itself when short and plainly safe, else a stable
    hash. Never raises. Ids that merely look hashed ('h-...') are hashed too, so no caller can
    pick an id that lands on another call's keys."""
    if isinstance(value, str) and _SAFE.fullmatch(value) and not value.startswith(_HASHED):
        return value
    return _HASHED + hashlib.sha256(id_bytes(value)).hexdigest()[:32]


def is_hashed(part: str) -> bool:
    return len(part) == len(_HASHED) + 32 and part.startswith(_HASHED) and all(
        c in "0123456789abcdef" for c in part[len(_HASHED):])


def as_text(value: str | bytes) -> str:
    """Valid Unicode text for a Redis value (redis-py and Lua's cjson refuse lone surrogates):
    the id itself when it is valid text, else its bytes with undecodable ones as '\\xNN'."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            pass
    return id_bytes(value).decode("utf-8", "backslashreplace")


def for_display(value: str | bytes) -> str:
    """One printable line for consoles and traces: controls, newlines and the like escaped."""
    text = as_text(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


@dataclass(frozen=True)
class Keys:
    prefix: str

    def call(self, call_id: str | bytes) -> str:
        return self.call_at(key_part(call_id))

    def call_at(self, part: str) -> str:
        """The call record at a key part read back from Redis (a `{p}:live` member)."""
        return f"{self.prefix}:call:{part}"

    def member(self, call_id: str | bytes) -> str:
        """The call's member in the `{p}:live` set."""
        return key_part(call_id)

    def call_events(self, call_id: str | bytes) -> str:
        return f"{self.call(call_id)}:events"

    def transcript(self, call_id: str | bytes) -> str:
        return f"{self.call(call_id)}:transcript"

    def recording(self, call_id: str | bytes) -> str:
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

    @property
    def quarantine(self) -> str:
        return f"{self.prefix}:quarantine"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{key_part(worker_id)}"

    def policy_tenant(self, tenant: str) -> str:
        return f"{self.prefix}:policy:tenant:{key_part(tenant)}"

    def policy_number(self, number: str) -> str:
        return f"{self.prefix}:policy:number:{key_part(number)}"

    @property
    def policy_index(self) -> str:
        return f"{self.prefix}:policy:index"

    @property
    def policy_channel(self) -> str:
        return f"{self.prefix}:policy:changed"
