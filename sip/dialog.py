"""SIP dialogs (RFC 3261 section 12): the state two user agents share for one call, and building
requests and responses that belong to it. Pure data plus helpers; no I/O, no clock."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from .message import Headers, NameAddr, Request, Response, parse_name_addr, parse_uri, parse_via

REASONS = {
    100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK", 202: "Accepted", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    420: "Bad Extension", 422: "Session Interval Too Small", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error", 501: "Not Implemented",
    503: "Service Unavailable", 505: "Version Not Supported", 603: "Decline",
}


@dataclass(frozen=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str           # our From (UAC) / To (UAS) URI, as a header value without tag
    remote_uri: str
    remote_target: str       # the peer's Contact URI
    route_set: tuple[str, ...] = ()
    local_seq: int = 0
    remote_seq: int | None = None
    peer_addr: tuple[str, int] = ("127.0.0.1", 5060)   # where in-dialog requests go
    transport: str = "udp"
    is_uas: bool = True

    def next_request(self, method: str, via_host: str, via_port: int, branch: str,
                     extra: tuple[tuple[str, str], ...] = (), body: bytes = b"",
                     cseq: int | None = None) -> tuple["Dialog", Request]:
        """A new in-dialog request (a fresh CSeq unless `cseq` is given, e.g. for ACK)."""
        seq = cseq if cseq is not None else self.local_seq + 1
        via = f"SIP/2.0/{self.transport.upper()} {via_host}:{via_port};branch={branch};rport"
        items = [("Via", via), ("Max-Forwards", "70"),
                 ("From", f"{self.local_uri};tag={self.local_tag}"),
                 ("To", f"{self.remote_uri};tag={self.remote_tag}" if self.remote_tag else self.remote_uri),
                 ("Call-ID", self.call_id), ("CSeq", f"{seq} {method}")]
        items += [("Route", r) for r in self.route_set]
        items += list(extra)
        req = Request(method, self.remote_target, Headers.of(*items), body)
        return (replace(self, local_seq=seq) if cseq is None else self), req

    def destination(self) -> tuple[str, int]:
        """First Route hop if it is an IP literal, else the Contact if it is, else the peer address."""
        for cand in (self.route_set[:1] and parse_name_addr(self.route_set[0]).uri, self.remote_target):
            if not cand:
                continue
            try:
                u = parse_uri(cand)
                ipaddress.ip_address(u.params.get("maddr", u.host))
                return (u.params.get("maddr", u.host), u.port or 5060)
            except ValueError:
                continue
        return self.peer_addr


def make_response(req: Request, status: int, reason: str = "", to_tag: str = "",
                  extra: tuple[tuple[str, str], ...] = (), body: bytes = b"",
                  received: tuple[str, int] | None = None) -> Response:
    """A response echoing Via, From, To (+tag), Call-ID, CSeq (RFC 3261 8.2.6.2)."""
    h = req.headers
    vias = h.get_all("Via")
    if vias and received is not None:
        try:
            top = parse_via(vias[0])
            params = dict(top.params)
            if "rport" in params:
                params["rport"] = str(received[1])
            if top.host != received[0] or "rport" in params:
                params["received"] = received[0]
            vias[0] = str(replace(top, params=params))
        except ValueError:
            pass
    items = [("Via", v) for v in vias]
    to = h.get("To") or ""
    if to_tag and status > 100:
        try:
            if not parse_name_addr(to).tag:
                to = f"{to};tag={to_tag}"
        except ValueError:
            pass
    items += [("From", h.get("From") or ""), ("To", to), ("Call-ID", h.get("Call-ID") or ""),
              ("CSeq", h.get("CSeq") or "")]
    if status == 100 and "Timestamp" in h:
        items.append(("Timestamp", h.get("Timestamp") or ""))
    items += list(extra)
    return Response(status, reason or REASONS.get(status, "Unknown"), Headers.of(*items), body)


def uas_dialog(invite: Request, local_tag: str, peer: tuple[str, int], transport: str) -> Dialog:
    h = invite.headers
    frm = parse_name_addr(h.get("From") or "")
    to = parse_name_addr(h.get("To") or "")
    contacts = h.get_all("Contact")
    target = parse_name_addr(contacts[0]).uri if contacts else frm.uri
    return Dialog(
        call_id=h.get("Call-ID") or "", local_tag=local_tag, remote_tag=frm.tag,
        local_uri=str(NameAddr(to.display, to.uri)), remote_uri=str(NameAddr(frm.display, frm.uri)),
        remote_target=target, route_set=tuple(h.get_all("Record-Route")),
        remote_seq=invite.cseq[0], peer_addr=peer, transport=transport, is_uas=True)


def uac_dialog(invite: Request, response: Response, peer: tuple[str, int], transport: str) -> Dialog:
    rh = response.headers
    frm = parse_name_addr(invite.headers.get("From") or "")
    to = parse_name_addr(rh.get("To") or "")
    contacts = rh.get_all("Contact")
    target = parse_name_addr(contacts[0]).uri if contacts else invite.uri
    return Dialog(
        call_id=invite.call_id, local_tag=frm.tag, remote_tag=to.tag,
        local_uri=str(NameAddr(frm.display, frm.uri)), remote_uri=str(NameAddr(to.display, to.uri)),
        remote_target=target, route_set=tuple(reversed(rh.get_all("Record-Route"))),
        local_seq=invite.cseq[0], peer_addr=peer, transport=transport, is_uas=False)
