"""Events the user agent core (`sip.ua.UserAgent`) hands to its owner. Frozen, plain data."""
from __future__ import annotations

from dataclasses import dataclass, field

from .sdp import Negotiated, SessionDescription


@dataclass(frozen=True)
class IncomingCall:
    call_id: str
    caller: str
    callee: str
    offer: SessionDescription | None
    remote_addr: tuple[str, int]
    transport: str
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class CallProgress:
    call_id: str
    status: int


@dataclass(frozen=True)
class CallAnswered:
    """Our outbound INVITE got a 2xx (ACK already sent)."""
    call_id: str
    media: Negotiated


@dataclass(frozen=True)
class CallConfirmed:
    """The ACK for our 2xx arrived: the inbound call is fully set up."""
    call_id: str
    media: Negotiated | None


@dataclass(frozen=True)
class MediaChanged:
    """A re-INVITE changed the stream (hold, resume, new address)."""
    call_id: str
    media: Negotiated


@dataclass(frozen=True)
class CallEnded:
    call_id: str
    reason: str   # remote_bye | local_bye | cancelled | rejected:<code> | no_ack | timeout | session_expired


@dataclass(frozen=True)
class DtmfInfo:
    """A key press signalled in SIP INFO (application/dtmf-relay or application/dtmf) instead of RTP."""
    call_id: str
    digit: str
    duration_ms: int


@dataclass(frozen=True)
class TransferResult:
    call_id: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class RegistrationChanged:
    aor: str
    registered: bool
    expires: int
    status: int


UaEvent = (IncomingCall | CallProgress | CallAnswered | CallConfirmed | MediaChanged | CallEnded
           | DtmfInfo | TransferResult | RegistrationChanged)
