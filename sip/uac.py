"""The client side of the UA core: placing calls (INVITE, its 2xx ACK, CANCEL, digest retry) and
registering with a trunk. Functions over a `UserAgent`; sans-IO like the rest of the core."""
from __future__ import annotations

from dataclasses import replace

from . import sdp
from .dialog import uac_dialog
from .digest import authorization, pick_challenge
from .events import CallAnswered, CallProgress, RegistrationChanged
from .message import Headers, Request, Response
from .registration import Registration, RegistrationSettings
from .transaction import MAGIC, ClientTransaction
from .ua_state import Call


def invite(ua, target: str, dest: tuple[str, int], rtp_port: int, now: float, transport: str = "udp",
           from_user: str | None = None, credentials: tuple[str, str] | None = None) -> str:
    """Place a call to `target` (a SIP URI) via `dest`; returns the Call-ID."""
    call_id = f"{ua._token(16)}@{ua.settings.host}"
    tag = ua._token(8)
    user = from_user or ua.settings.user
    session_id = ua._rand.randrange(1, 2**31)
    offer = sdp.offer(ua.settings.host, rtp_port, session_id, codecs=ua.settings.codecs)
    branch = MAGIC + ua._token(12)
    items = [("Via", ua._via(branch, transport)), ("Max-Forwards", "70"),
             ("From", f"<sip:{user}@{ua.settings.host}>;tag={tag}"), ("To", f"<{target}>"),
             ("Call-ID", call_id), ("CSeq", "1 INVITE")] + ua._contact_headers() + [
             ("Supported", "timer"), ("Content-Type", "application/sdp")]
    req = Request("INVITE", target, Headers.of(*items), bytes(offer))
    call = Call(call_id, tag, False, "calling", req, dest, transport, local_sdp=offer, session_id=session_id,
                rtp_port=rtp_port, credentials=credentials, invite_branch=branch)
    ua.calls[call_id] = call
    ua._start_client(req, dest, transport, "invite", call_id, now)
    return call_id


def register(ua, settings: RegistrationSettings, dest: tuple[str, int], now: float) -> None:
    contact = f"sip:{ua.settings.user}@{ua.settings.host}:{ua.settings.port}"
    ua._registrations[settings.aor] = Registration(settings, f"{ua._token(16)}@{ua.settings.host}",
                                                     ua._token(8), contact)
    ua._reg_dest[settings.aor] = dest
    send_register(ua, settings.aor, now)


def unregister(ua, aor: str, now: float) -> None:
    if aor in ua._registrations:
        send_register(ua, aor, now, expires=0)


def registered(ua, aor: str) -> bool:
    reg = ua._registrations.get(aor)
    return bool(reg and reg.registered)


def invite_response(ua, call: Call, txn: ClientTransaction, resp: Response, now: float) -> None:
    if resp.status < 200:
        if resp.status > 100 and call.state == "calling":
            call.state = "early"
        ua._events.append(CallProgress(call.call_id, resp.status))
        return
    if 200 <= resp.status < 300:
        if call.dialog is not None:       # a retransmitted 2xx: our ACK was lost
            ack_2xx(ua, call, resp, now)
            return
        call.dialog = uac_dialog(call.invite, resp, call.peer, call.transport)
        try:
            call.media = sdp.accept_answer(call.local_sdp, sdp.parse_sdp(resp.body))
        except sdp.SdpError:
            ack_2xx(ua, call, resp, now)
            ua.hangup(call.call_id, now)
            return
        call.state = "confirmed"
        ack_2xx(ua, call, resp, now)
        ua._arm_uac_session_timer(call, resp, now)
        if call.cancel_sent:
            ua.hangup(call.call_id, now)
            return
        ua._events.append(CallAnswered(call.call_id, call.media))
        return
    if resp.status in (401, 407) and call.credentials and not call.auth_tried:
        name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        try:
            ch = pick_challenge(resp.headers.get_all(name) or [resp.headers.get(name) or ""])
        except ValueError:
            ua._end(call, f"rejected:{resp.status}")
            return
        call.auth_tried = True
        value = authorization(ch, call.credentials[0], call.credentials[1], "INVITE", call.invite.uri)
        branch = MAGIC + ua._token(12)
        h = call.invite.headers.set("Via", ua._via(branch, call.transport))
        h = h.set("CSeq", f"{call.invite.cseq[0] + 1} INVITE")
        h = h.add("Authorization" if resp.status == 401 else "Proxy-Authorization", value)
        call.invite = replace(call.invite, headers=h)
        call.invite_branch = branch
        ua._start_client(call.invite, call.peer, call.transport, "invite", call.call_id, now)
        return
    ua._end(call, "cancelled" if resp.status == 487 else f"rejected:{resp.status}")


def ack_2xx(ua, call: Call, resp: Response, now: float) -> None:
    dlg = call.dialog
    if dlg is None:
        return
    _, ack = dlg.next_request("ACK", ua.settings.host, ua.settings.port, MAGIC + ua._token(12),
                              cseq=resp.cseq[0])
    ua._send(bytes(ack), dlg.destination(), dlg.transport)


def send_cancel(ua, call: Call, now: float) -> None:
    h = call.invite.headers
    items = [("Via", h.get_all("Via")[0]), ("Max-Forwards", "70"), ("From", h.get("From") or ""),
             ("To", h.get("To") or ""), ("Call-ID", call.call_id), ("CSeq", f"{call.invite.cseq[0]} CANCEL")]
    items += [("Route", r) for r in h.get_all("Route")]
    ua._start_client(Request("CANCEL", call.invite.uri, Headers.of(*items)), call.peer, call.transport,
                       "cancel", call.call_id, now)


def send_register(ua, aor: str, now: float, expires: int | None = None) -> None:
    reg = ua._registrations[aor]
    dest = ua._reg_dest[aor]
    req = reg.request(ua._via(MAGIC + ua._token(12), "udp"), expires)
    ua._start_client(req, dest, "udp", "register", aor, now)


def register_response(ua, aor: str, resp: Response, now: float) -> None:
    reg = ua._registrations.get(aor)
    if reg is None:
        return
    result = reg.on_response(resp, now)
    ua._touch_reg(aor)
    if result == "retry":
        send_register(ua, aor, now, expires=0 if reg.unregistering else None)
    elif result in ("ok", "failed"):
        ua._events.append(RegistrationChanged(aor, reg.registered, reg.expires, resp.status))


def send_options(ua, dest: tuple[str, int], now: float) -> None:
    """An out-of-dialog OPTIONS (keepalive / health probe)."""
    branch = MAGIC + ua._token(12)
    items = [("Via", ua._via(branch, "udp")), ("Max-Forwards", "70"),
             ("From", f"<sip:{ua.settings.user}@{ua.settings.host}>;tag={ua._token(8)}"),
             ("To", f"<sip:{dest[0]}:{dest[1]}>"), ("Call-ID", f"{ua._token(16)}@{ua.settings.host}"),
             ("CSeq", "1 OPTIONS")]
    ua._start_client(Request("OPTIONS", f"sip:{dest[0]}:{dest[1]}", Headers.of(*items)), dest, "udp",
                     "keepalive", "", now)
