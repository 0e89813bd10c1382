"""The UA core's settings and its record of one call (signalling state, not media)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from . import sdp
from .dialog import Dialog
from .message import Request
from .session_timer import SessionTimer
from .transaction import ServerInviteTransaction, Timers


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


@dataclass
class Call:
    call_id: str
    local_tag: str
    inbound: bool
    state: str                                  # incoming|answered|confirmed|calling|early|ended
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
