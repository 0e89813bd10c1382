"""The client side of the UA core, sans-IO: client transactions and the responses to them, placing
calls (INVITE, its 2xx ACK, CANCEL, digest retry), registering with a trunk and OPTIONS keepalives.

`UserAgentClient` shares the core's `UaContext` (settings, call records, outputs, timer heap) with
the server side (`sip.ua.UserAgent`, its owner), and reaches back to it only through the callbacks
it is given: `hangup` and, for the in-dialog requests the server side sends (BYE, REFER,
re-INVITE), `dialog_response` and `dialog_timeout`."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from . import sdp, session_timer
from .dialog import uac_dialog
from .digest import authorization, pick_challenge
from .events import CallAnswered, CallProgress, RegistrationChanged
from .message import Headers, Request, Response, parse_via
from .registration import Registration, RegistrationSettings
from .transaction import MAGIC, ClientTransaction
from .ua_state import Call, CallState, UaContext

ClientEntry = tuple[ClientTransaction, str, str]        # the transaction, its purpose, its call (or AOR)


class UserAgentClient:
    def __init__(self, ctx: UaContext, hangup: Callable[[str, float], None],
                 dialog_response: Callable[[str, Call, Response, float], None],
                 dialog_timeout: Callable[[str, Call, float], None]) -> None:
        self.ctx = ctx
        self._hangup = hangup
        self._dialog_response = dialog_response
        self._dialog_timeout = dialog_timeout
        self.transactions: dict[tuple[str, str], ClientEntry] = {}
        self.registrations: dict[str, Registration] = {}
        self._reg_dest: dict[str, tuple[str, int]] = {}
        self._keepalives: dict[tuple[str, int], float] = {}
        timers = ctx.timers
        timers.on("client", self._client_deadline, self._client_fire)
        timers.on("ping", lambda dest, interval: self._keepalives.get(dest), self._ping_fire)
        timers.on("reg", self._reg_deadline, self._reg_fire)

    # -- client transactions ---------------------------------------------------------------------
    def start(self, req: Request, dest: tuple[str, int], transport: str, purpose: str, cid: str,
              now: float) -> None:
        """Send `req` in a new client transaction; its final response (or timeout) goes to `purpose`."""
        txn = ClientTransaction(req, dest, transport != "udp", now, self.ctx.settings.timers)
        branch = parse_via(req.headers.get_all("Via")[0]).branch
        self.transactions[(branch, req.method)] = (txn, purpose, cid)
        for data in txn.start():
            self.ctx.send(data, dest, transport)
        self._touch((branch, req.method), now)

    def receive_response(self, resp: Response, now: float) -> None:
        ctx = self.ctx
        vias = resp.headers.get_all("Via")
        if not vias:
            ctx.stats["stray_response"] += 1
            return
        try:
            branch = parse_via(vias[0]).branch
            method = resp.cseq[1]
        except ValueError:
            ctx.stats["malformed_response"] += 1
            return
        entry = self.transactions.get((branch, method))
        if entry is None:
            ctx.stats["stray_response"] += 1
            return
        txn, purpose, cid = entry
        deliver, out = txn.receive_response(resp, now)
        for data in out:
            ctx.send(data, txn.addr, "tcp" if txn.reliable else "udp")
        self._touch((branch, method), now)
        if not deliver:
            ctx.stats["response_absorbed"] += 1
            return
        if purpose == "register":
            self._register_response(cid, resp, now)
            return
        if purpose == "keepalive":
            ctx.stats["keepalive_ok" if resp.status < 300 or resp.status in (405, 501) else "keepalive_failed"] += 1
            return
        call = ctx.calls.get(cid)
        if call is None:
            return
        if purpose == "invite":
            self._invite_response(call, resp, now)
        else:
            self._dialog_response(purpose, call, resp, now)

    def _client_deadline(self, key: tuple[str, str], entry: ClientEntry) -> float | None:
        return entry[0].timer() if self.transactions.get(key) is entry else None

    def _client_fire(self, key: tuple[str, str], entry: ClientEntry, now: float) -> None:
        txn = entry[0]
        for data in txn.handle_timer(now):
            self.ctx.stats["retransmitted"] += 1
            self.ctx.send(data, txn.addr, "tcp" if txn.reliable else "udp")
        self._touch(key, now)

    def _touch(self, key: tuple[str, str], now: float) -> None:
        entry = self.transactions.get(key)
        if entry is None:
            return
        txn, purpose, cid = entry
        if txn.terminated:
            del self.transactions[key]
            if txn.timed_out:
                self._timeout(purpose, cid, now)
            return
        self.ctx.timers.push("client", key, entry)

    def _timeout(self, purpose: str, cid: str, now: float) -> None:
        ctx = self.ctx
        ctx.stats[f"timeout_{purpose}"] += 1
        if purpose == "register":
            reg = self.registrations.get(cid)
            if reg is not None:
                reg.on_timeout(now)
                self._touch_reg(cid)
                ctx.emit(RegistrationChanged(cid, False, 0, 408))
            return
        call = ctx.calls.get(cid)
        if call is None:
            return
        if purpose == "invite":
            if call.state in (CallState.CALLING, CallState.EARLY):
                ctx.end(call, "timeout")
        else:
            self._dialog_timeout(purpose, call, now)

    # -- placing calls ---------------------------------------------------------------------------
    def invite(self, target: str, dest: tuple[str, int], rtp_port: int, now: float, transport: str = "udp",
               from_user: str | None = None, credentials: tuple[str, str] | None = None) -> str:
        """Place a call to `target` (a SIP URI) via `dest`; returns the Call-ID."""
        ctx = self.ctx
        s = ctx.settings
        call_id = f"{ctx.token(16)}@{s.host}"
        tag = ctx.token(8)
        user = from_user or s.user
        session_id = ctx.rand.randrange(1, 2**31)
        offer = sdp.offer(s.host, rtp_port, session_id, codecs=s.codecs)
        branch = MAGIC + ctx.token(12)
        items = [("Via", ctx.via(branch, transport)), ("Max-Forwards", "70"),
                 ("From", f"<sip:{user}@{s.host}>;tag={tag}"), ("To", f"<{target}>"),
                 ("Call-ID", call_id), ("CSeq", "1 INVITE")] + ctx.contact_headers() + [
                 ("Supported", "timer"), ("Content-Type", "application/sdp")]
        req = Request("INVITE", target, Headers.of(*items), bytes(offer))
        call = Call(call_id, tag, False, CallState.CALLING, req, dest, transport, local_sdp=offer,
                    session_id=session_id, rtp_port=rtp_port, credentials=credentials, invite_branch=branch)
        ctx.calls[call_id] = call
        self.start(req, dest, transport, "invite", call_id, now)
        return call_id

    def cancel(self, call: Call, now: float) -> None:
        h = call.invite.headers
        items = [("Via", h.get_all("Via")[0]), ("Max-Forwards", "70"), ("From", h.get("From") or ""),
                 ("To", h.get("To") or ""), ("Call-ID", call.call_id), ("CSeq", f"{call.invite.cseq[0]} CANCEL")]
        items += [("Route", r) for r in h.get_all("Route")]
        self.start(Request("CANCEL", call.invite.uri, Headers.of(*items)), call.peer, call.transport,
                   "cancel", call.call_id, now)

    def ack_2xx(self, call: Call, resp: Response, now: float) -> None:
        dlg = call.dialog
        if dlg is None:
            return
        s = self.ctx.settings
        _, ack = dlg.next_request("ACK", s.host, s.port, MAGIC + self.ctx.token(12), cseq=resp.cseq[0])
        self.ctx.send(bytes(ack), dlg.destination(), dlg.transport)

    def _invite_response(self, call: Call, resp: Response, now: float) -> None:
        ctx = self.ctx
        if resp.status < 200:
            if resp.status > 100 and call.state == CallState.CALLING:
                call.state = CallState.EARLY
            ctx.emit(CallProgress(call.call_id, resp.status))
            return
        if 200 <= resp.status < 300:
            if call.dialog is not None:       # a retransmitted 2xx: our ACK was lost
                self.ack_2xx(call, resp, now)
                return
            if call.local_sdp is None:
                raise RuntimeError(f"outbound call {call.call_id} has no offer of ours to match the answer to")
            call.dialog = uac_dialog(call.invite, resp, call.peer, call.transport)
            try:
                call.media = sdp.accept_answer(call.local_sdp, sdp.parse_sdp(resp.body))
            except sdp.SdpError:
                self.ack_2xx(call, resp, now)
                self._hangup(call.call_id, now)
                return
            call.state = CallState.CONFIRMED
            self.ack_2xx(call, resp, now)
            timer = session_timer.from_answer(resp)
            if timer is not None:
                call.timer = timer
                call.timer.arm(now)
                ctx.timers.push("call", call.call_id, call)
            if call.cancel_sent:
                self._hangup(call.call_id, now)
                return
            ctx.emit(CallAnswered(call.call_id, call.media))
            return
        if resp.status in (401, 407) and call.credentials and not call.auth_tried:
            name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
            try:
                ch = pick_challenge(resp.headers.get_all(name) or [resp.headers.get(name) or ""])
            except ValueError:
                ctx.end(call, f"rejected:{resp.status}")
                return
            call.auth_tried = True
            value = authorization(ch, call.credentials[0], call.credentials[1], "INVITE", call.invite.uri)
            branch = MAGIC + ctx.token(12)
            h = call.invite.headers.set("Via", ctx.via(branch, call.transport))
            h = h.set("CSeq", f"{call.invite.cseq[0] + 1} INVITE")
            h = h.add("Authorization" if resp.status == 401 else "Proxy-Authorization", value)
            call.invite = replace(call.invite, headers=h)
            call.invite_branch = branch
            self.start(call.invite, call.peer, call.transport, "invite", call.call_id, now)
            return
        ctx.end(call, "cancelled" if resp.status == 487 else f"rejected:{resp.status}")

    # -- registration ----------------------------------------------------------------------------
    def register(self, settings: RegistrationSettings, dest: tuple[str, int], now: float) -> None:
        ctx = self.ctx
        s = ctx.settings
        contact = f"sip:{s.user}@{s.host}:{s.port}"
        self.registrations[settings.aor] = Registration(settings, f"{ctx.token(16)}@{s.host}", ctx.token(8),
                                                        contact)
        self._reg_dest[settings.aor] = dest
        self._send_register(settings.aor, now)

    def unregister(self, aor: str, now: float) -> None:
        if aor in self.registrations:
            self._send_register(aor, now, expires=0)

    def registered(self, aor: str) -> bool:
        reg = self.registrations.get(aor)
        return bool(reg and reg.registered)

    def _send_register(self, aor: str, now: float, expires: int | None = None) -> None:
        reg = self.registrations[aor]
        dest = self._reg_dest[aor]
        req = reg.request(self.ctx.via(MAGIC + self.ctx.token(12), "udp"), expires)
        self.start(req, dest, "udp", "register", aor, now)

    def _register_response(self, aor: str, resp: Response, now: float) -> None:
        reg = self.registrations.get(aor)
        if reg is None:
            return
        result = reg.on_response(resp, now)
        self._touch_reg(aor)
        if result == "retry":
            self._send_register(aor, now, expires=0 if reg.unregistering else None)
        elif result in ("ok", "failed"):
            self.ctx.emit(RegistrationChanged(aor, reg.registered, reg.expires, resp.status))

    def _touch_reg(self, aor: str) -> None:
        reg = self.registrations.get(aor)
        if reg is not None:
            self.ctx.timers.push("reg", aor, reg)

    def _reg_deadline(self, aor: str, reg: Registration) -> float | None:
        return reg.refresh_at if self.registrations.get(aor) is reg else None

    def _reg_fire(self, aor: str, reg: Registration, now: float) -> None:
        reg.refresh_at = None
        self._send_register(aor, now)

    # -- keepalives ------------------------------------------------------------------------------
    def keepalive(self, dest: tuple[str, int], interval: float, now: float) -> None:
        """Send OPTIONS to `dest` every `interval` seconds (NAT bindings, trunk health); 0 stops.
        Answers are counted in `stats` as keepalive_ok / keepalive_failed / timeout_keepalive."""
        if interval <= 0:
            self._keepalives.pop(dest, None)
            return
        self._keepalives[dest] = now
        self.ctx.timers.push("ping", dest, interval)

    def _ping_fire(self, dest: tuple[str, int], interval: float, now: float) -> None:
        self._keepalives[dest] = now + interval
        self._send_options(dest, now)
        self.ctx.timers.push("ping", dest, interval)

    def _send_options(self, dest: tuple[str, int], now: float) -> None:
        """An out-of-dialog OPTIONS (keepalive / health probe)."""
        ctx = self.ctx
        s = ctx.settings
        branch = MAGIC + ctx.token(12)
        items = [("Via", ctx.via(branch, "udp")), ("Max-Forwards", "70"),
                 ("From", f"<sip:{s.user}@{s.host}>;tag={ctx.token(8)}"),
                 ("To", f"<sip:{dest[0]}:{dest[1]}>"), ("Call-ID", f"{ctx.token(16)}@{s.host}"),
                 ("CSeq", "1 OPTIONS")]
        self.start(Request("OPTIONS", f"sip:{dest[0]}:{dest[1]}", Headers.of(*items)), dest, "udp",
                   "keepalive", "", now)
