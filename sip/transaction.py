"""RFC 3261 section 17 transactions (with the RFC 6026 Accepted state), sans-IO.

Each transaction is fed `now` (seconds, any monotonic origin) and returns the bytes to send to its
peer address; `timer()` says when it next wants `handle_timer(now)`. Timers:

  client INVITE:      A (retransmit, T1 doubling), B (give up, 64*T1), D (linger after a final >= 300)
  client non-INVITE:  E (retransmit, doubling capped at T2), F (give up, 64*T1), K (linger, T4)
  server INVITE:      G (retransmit final response, doubling capped at T2), H (give up waiting for
                      ACK, 64*T1), I (absorb ACK retransmissions, T4), L (Accepted: retransmit 2xx
                      until the ACK reaches the core, give up after 64*T1)
  server non-INVITE:  J (absorb request retransmissions, 64*T1)

Over reliable transports (TCP) the retransmission timers are off and the linger timers are zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .message import Headers, Request, Response, parse_name_addr, parse_via

T1, T2, T4 = 0.5, 4.0, 5.0
MAGIC = "z9hG4bK"
ServerKey = tuple[str | int | None, ...]   # what a server transaction is filed under (server_key)


def server_key(req: Request, transport: str = "udp", method: str | None = None) -> ServerKey:
    """The server transaction a request belongs to (RFC 3261 17.2.3; ACK matches its INVITE).

    Branch and sent-by as the RFC says; Call-ID and CSeq are checked too, so a peer that reuses
    branches (RFC 4475 messages do) never gets another request's answer. Requests without the
    magic cookie (RFC 2543) are matched on Request-URI, Call-ID, From tag, CSeq and top Via."""
    m = method or ("INVITE" if req.method == "ACK" else req.method)
    via = parse_via(req.headers.get_all("Via")[0])
    if via.branch.startswith(MAGIC) and len(via.branch) > len(MAGIC):
        return (transport, via.branch, via.host, via.port, m, req.call_id, req.cseq[0])
    frm = parse_name_addr(req.headers.get("From") or "")
    return (transport, "2543", req.uri, req.call_id, frm.tag, req.cseq[0], str(via), m)


class TxnState(StrEnum):
    """RFC 3261 17 transaction states (with RFC 6026's Accepted); equal to their lower-case names."""
    INITIAL = ""
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


@dataclass(frozen=True)
class Timers:
    t1: float = T1
    t2: float = T2
    t4: float = T4


class _Base:
    def __init__(self, request: Request, addr: tuple[str, int], reliable: bool, now: float, timers: Timers):
        self.request = request
        self.addr = addr
        self.reliable = reliable
        self.timers = timers
        self.state = TxnState.INITIAL
        self.timed_out = False
        self._deadlines: dict[str, float] = {}
        self._interval = timers.t1
        self.created = now

    def timer(self) -> float | None:
        return min(self._deadlines.values()) if self._deadlines else None

    @property
    def terminated(self) -> bool:
        return self.state == TxnState.TERMINATED

    def _arm(self, name: str, at: float) -> None:
        self._deadlines[name] = at

    def _terminate(self) -> None:
        self.state = TxnState.TERMINATED
        self._deadlines.clear()

    def handle_timer(self, now: float) -> list[bytes]:
        out: list[bytes] = []
        for name, at in sorted(self._deadlines.items(), key=lambda kv: kv[1]):
            if at <= now and name in self._deadlines:
                del self._deadlines[name]
                out.extend(getattr(self, f"_timer_{name}")(now))
        return out


class ServerInviteTransaction(_Base):
    """Proceeding -> (Completed -> Confirmed | Accepted) -> Terminated."""

    def __init__(self, request: Request, addr: tuple[str, int], reliable: bool, now: float,
                 timers: Timers = Timers()):
        super().__init__(request, addr, reliable, now, timers)
        self.key: ServerKey = ()        # the owner's key for it (server_key), set when it is filed
        self.state = TxnState.PROCEEDING
        self.last_response: bytes | None = None
        self.final_status: int | None = None
        self.acked = False

    def respond(self, response: Response, now: float) -> list[bytes]:
        if self.state not in (TxnState.PROCEEDING,):
            return []
        data = bytes(response)
        self.last_response = data
        if response.status < 200:
            return [data]
        self.final_status = response.status
        if response.status < 300:
            self.state = TxnState.ACCEPTED
            self._interval = self.timers.t1
            if not self.reliable:
                self._arm("g2xx", now + self._interval)
            self._arm("l", now + 64 * self.timers.t1)
        else:
            self.state = TxnState.COMPLETED
            self._interval = self.timers.t1
            if not self.reliable:
                self._arm("g", now + self._interval)
            self._arm("h", now + 64 * self.timers.t1)
        return [data]

    def on_request_retransmission(self, now: float) -> list[bytes]:
        """The same INVITE arrived again: answer with the last response, never start a second call."""
        if self.state in (TxnState.PROCEEDING, TxnState.COMPLETED, TxnState.ACCEPTED) and self.last_response:
            return [self.last_response]
        return []

    def on_ack(self, now: float) -> None:
        """ACK for a non-2xx final response (same branch), or the core saw the ACK for our 2xx."""
        if self.state == TxnState.COMPLETED:
            self.state = TxnState.CONFIRMED
            self._deadlines.pop("g", None)
            self._deadlines.pop("h", None)
            self._arm("i", now + (0 if self.reliable else self.timers.t4))
        elif self.state == TxnState.ACCEPTED:
            self.acked = True
            self._deadlines.pop("g2xx", None)
            self._deadlines.pop("l", None)
            self._terminate()

    def _timer_g(self, now: float) -> list[bytes]:
        self._interval = min(2 * self._interval, self.timers.t2)
        self._arm("g", now + self._interval)
        return [self.last_response] if self.last_response else []

    def _timer_g2xx(self, now: float) -> list[bytes]:
        self._interval = min(2 * self._interval, self.timers.t2)
        self._arm("g2xx", now + self._interval)
        return [self.last_response] if self.last_response else []

    def _timer_h(self, now: float) -> list[bytes]:
        self.timed_out = True
        self._terminate()
        return []

    def _timer_l(self, now: float) -> list[bytes]:
        self.timed_out = True   # no ACK for our 2xx: the core must hang up with BYE
        self._terminate()
        return []

    def _timer_i(self, now: float) -> list[bytes]:
        self._terminate()
        return []


class ServerTransaction(_Base):
    """Non-INVITE server transaction: Trying -> Proceeding -> Completed -> Terminated."""

    def __init__(self, request: Request, addr: tuple[str, int], reliable: bool, now: float,
                 timers: Timers = Timers()):
        super().__init__(request, addr, reliable, now, timers)
        self.key: ServerKey = ()        # the owner's key for it (server_key), set when it is filed
        self.state = TxnState.TRYING
        self.last_response: bytes | None = None

    def respond(self, response: Response, now: float) -> list[bytes]:
        if self.state not in (TxnState.TRYING, TxnState.PROCEEDING):
            return []
        data = bytes(response)
        self.last_response = data
        if response.status < 200:
            self.state = TxnState.PROCEEDING
        else:
            self.state = TxnState.COMPLETED
            self._arm("j", now + (0 if self.reliable else 64 * self.timers.t1))
        return [data]

    def on_request_retransmission(self, now: float) -> list[bytes]:
        if self.state in (TxnState.PROCEEDING, TxnState.COMPLETED) and self.last_response:
            return [self.last_response]
        return []

    def _timer_j(self, now: float) -> list[bytes]:
        self._terminate()
        return []


class ClientTransaction(_Base):
    """Client INVITE (Calling/Proceeding/Completed) or non-INVITE (Trying/Proceeding/Completed)."""

    def __init__(self, request: Request, addr: tuple[str, int], reliable: bool, now: float,
                 timers: Timers = Timers()):
        super().__init__(request, addr, reliable, now, timers)
        self.invite = request.method == "INVITE"
        self.state = TxnState.CALLING if self.invite else TxnState.TRYING
        self.data = bytes(request)
        self.final: Response | None = None
        if not reliable:
            self._arm("a" if self.invite else "e", now + timers.t1)
        self._arm("b" if self.invite else "f", now + 64 * timers.t1)

    def start(self) -> list[bytes]:
        return [self.data]

    def receive_response(self, response: Response, now: float) -> tuple[bool, list[bytes]]:
        """Returns (pass the response to the core?, bytes to send)."""
        if self.state in (TxnState.TERMINATED,):
            return False, []
        if response.status < 200:
            if self.state in (TxnState.CALLING, TxnState.TRYING, TxnState.PROCEEDING):
                self.state = TxnState.PROCEEDING
                self._deadlines.pop("a", None)
                self._deadlines.pop("b", None)
                if not self.invite and "e" in self._deadlines:
                    self._arm("e", now + self.timers.t2)
                return True, []
            return False, []
        if self.invite:
            if response.status < 300:
                # 2xx: the core ACKs it (end to end); RFC 6026 keeps us around to absorb retransmissions
                self.final = response
                self.state = TxnState.ACCEPTED
                self._deadlines.clear()
                self._arm("m", now + 64 * self.timers.t1)
                return True, []
            ack = self._ack_for(response)
            if self.state == TxnState.COMPLETED:
                return False, [ack]
            self.final = response
            self.state = TxnState.COMPLETED
            self._deadlines.clear()
            self._arm("d", now + (0 if self.reliable else 32.0))
            return True, [ack]
        if self.state == TxnState.COMPLETED:
            return False, []
        self.final = response
        self.state = TxnState.COMPLETED
        self._deadlines.clear()
        self._arm("k", now + (0 if self.reliable else self.timers.t4))
        return True, []

    def _ack_for(self, response: Response) -> bytes:
        h = self.request.headers
        items = [("Via", h.get_all("Via")[0]), ("From", h.get("From") or ""),
                 ("To", response.headers.get("To") or ""), ("Call-ID", h.get("Call-ID") or ""),
                 ("CSeq", f"{self.request.cseq[0]} ACK"), ("Max-Forwards", "70")]
        items += [("Route", r) for r in h.get_all("Route")]
        return bytes(Request("ACK", self.request.uri, Headers.of(*items)))

    def _timer_a(self, now: float) -> list[bytes]:
        if self.state != TxnState.CALLING:
            return []
        self._interval *= 2
        self._arm("a", now + self._interval)
        return [self.data]

    def _timer_e(self, now: float) -> list[bytes]:
        if self.state not in (TxnState.TRYING, TxnState.PROCEEDING):
            return []
        self._interval = min(2 * self._interval, self.timers.t2) if self.state == TxnState.TRYING else self.timers.t2
        self._arm("e", now + self._interval)
        return [self.data]

    def _timer_b(self, now: float) -> list[bytes]:
        self.timed_out = self.state in (TxnState.CALLING, TxnState.TRYING, TxnState.PROCEEDING)
        self._terminate()
        return []

    _timer_f = _timer_b

    def _timer_d(self, now: float) -> list[bytes]:
        self._terminate()
        return []

    _timer_k = _timer_d
    _timer_m = _timer_d


ServerTxn = ServerInviteTransaction | ServerTransaction
