"""The UA core's settings, its record of one call (signalling state, not media), and the state
the core's server side (`ua.py`) and client side (`uac.py`) share."""
from __future__ import annotations

import ipaddress
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import StrEnum

from . import sdp
from .dialog import Dialog
from .events import CallEnded, UaEvent
from .message import Request
from .ratelimit import CallAdmission
from .session_timer import SessionTimer
from .timer_heap import TimerHeap
from .transaction import ServerInviteTransaction, Timers

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, REFER, UPDATE, INFO"


@dataclass(frozen=True)
class UaSettings:
    host: str = "127.0.0.1"          # address we advertise in Via, Contact and SDP
    port: int = 5060
    user: str = "duplexbot"
    user_agent: str = "duplexbot"
    max_calls: int = 1000
    max_cps: float = 200.0
    retry_after: int = 5
    session_expires: int = 1800      # offered when the peer supports timers but asked for none
    min_se: int = 90
    timers: Timers = field(default_factory=Timers)
    seed: int | None = None
    allow: tuple[str, ...] = ()      # networks (CIDR) that may place calls to us; empty: anyone
    codecs: tuple[str, ...] = ("PCMU", "PCMA")   # in our order of preference; "OPUS" optional

    def allows(self, ip: str) -> bool:
        if not self.allow:
            return True
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in ipaddress.ip_network(n, strict=False) for n in self.allow)


class CallState(StrEnum):
    """inbound: incoming -> answered -> confirmed; outbound: calling -> early -> confirmed; both end
    in ended. Members equal their lower-case names."""
    INCOMING = "incoming"
    ANSWERED = "answered"
    CONFIRMED = "confirmed"
    CALLING = "calling"
    EARLY = "early"
    ENDED = "ended"


@dataclass
class Call:
    call_id: str
    local_tag: str
    inbound: bool
    state: CallState
    invite: Request
    peer: tuple[str, int]
    transport: str
    dialog: Dialog | None = None
    invite_txn: ServerInviteTransaction | None = None
    local_sdp: sdp.SessionDescription | None = None
    sdp_version: int = 0
    session_id: int = 0
    rtp_port: int = 0
    media: sdp.Negotiated | None = None
    timer: SessionTimer = field(default_factory=SessionTimer)
    reinvite_pending: bool = False
    auth_tried: bool = False
    credentials: tuple[str, str] | None = None
    invite_branch: str = ""
    cancel_sent: bool = False
    bye_after_ack: bool = False


class UaContext:
    """What both sides of the user agent share: settings, the call records, counters, the
    randomness behind tags and branches, what goes out (datagrams, events) and the timer heap."""

    def __init__(self, settings: UaSettings, limiter: CallAdmission) -> None:
        self.settings = settings
        self.limiter = limiter
        self.rand = random.Random(settings.seed)
        self.calls: dict[str, Call] = {}
        self.stats: Counter[str] = Counter()
        self.events: deque[UaEvent] = deque()
        self.outbox: list[tuple[bytes, tuple[str, int], str]] = []
        self.timers = TimerHeap()
        self.now = 0.0
        self.ended_at: dict[str, float] = {}
        self.timers.on("ended", self._ended_deadline, self._ended_fire)

    def token(self, n: int) -> str:
        return "%0*x" % (n, self.rand.getrandbits(4 * n))

    def via(self, branch: str, transport: str) -> str:
        s = self.settings
        return f"SIP/2.0/{transport.upper()} {s.host}:{s.port};branch={branch};rport"

    def contact_headers(self) -> list[tuple[str, str]]:
        s = self.settings
        return [("Contact", f"<sip:{s.user}@{s.host}:{s.port}>"), ("Allow", ALLOW), ("User-Agent", s.user_agent)]

    def send(self, data: bytes, addr: tuple[str, int], transport: str) -> None:
        self.outbox.append((data, addr, transport))

    def emit(self, event: UaEvent) -> None:
        self.events.append(event)

    def end(self, call: Call, reason: str) -> None:
        """The call is over for the owner (CallEnded); its record stays a while for late
        retransmissions, then the timer drops it."""
        if call.state == CallState.ENDED:
            return
        call.state = CallState.ENDED
        call.timer.deadline = None
        if call.inbound:
            self.limiter.release(call.call_id)
        self.events.append(CallEnded(call.call_id, reason))
        self.ended_at[call.call_id] = self.now + 64 * self.settings.timers.t1
        self.timers.push("ended", call.call_id, call)

    def _ended_deadline(self, call_id: str, call: Call) -> float | None:
        return self.ended_at.get(call_id) if self.calls.get(call_id) is call else None

    def _ended_fire(self, call_id: str, call: Call, now: float) -> None:
        self.ended_at.pop(call_id, None)
        if call.state == CallState.ENDED:
            del self.calls[call_id]
