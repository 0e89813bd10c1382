"""The SIP user agent core, sans-IO (RFC 3261 sections 8, 12-17; RFC 4028 session timers).

Fed with `receive_datagram(data, addr, now, transport)`; returns bytes through `datagrams_to_send()`
as (data, addr, transport); asks for `handle_timer(now)` at `get_timer()`; reports `next_event()`.
The owner answers calls with `answer()`, ends them with `hangup()`, transfers with `refer()`,
places calls with `invite()` and registers with `register()`.

Every message is validated before it can touch call state; a malformed one gets a 4xx when it can
be answered and is dropped (and counted in `stats`) when it cannot. Retransmitted requests are
absorbed by their server transaction, so one INVITE never makes two calls.
"""
from __future__ import annotations

from dataclasses import replace

from . import sdp, session_timer
from .dialog import make_response, uas_dialog
from .dtmf import dtmf_from_info
from .events import CallConfirmed, DtmfInfo, IncomingCall, MediaChanged, TransferResult, UaEvent
from .message import Request, Response, SipParseError, parse_message, parse_name_addr, split_list
from .ratelimit import CallAdmission, CallRate, LocalCap
from .registration import RegistrationSettings
from .transaction import MAGIC, ServerInviteTransaction, ServerKey, ServerTransaction, ServerTxn, TxnState, server_key
from .ua_state import ALLOW, Call, CallState, UaContext, UaSettings
from .uac import UserAgentClient
from .validate import check_invite_body, check_request, malformed_answer, sdp_body

__all__ = ["UserAgent", "UaSettings", "Call", "CallState", "ALLOW", "SUPPORTED"]
SUPPORTED = frozenset({"timer", "replaces", "norefersub"})
KNOWN_NOT_ALLOWED = {"REGISTER", "MESSAGE", "SUBSCRIBE", "PUBLISH", "PRACK"}


class UserAgent:
    def __init__(self, settings: UaSettings = UaSettings(), admission: CallAdmission | None = None):
        """`admission` decides whether a new inbound call is taken (default: `LocalCap` of
        `settings.max_calls`); the calls/s bucket (`settings.max_cps`) applies on top."""
        self.settings = settings
        self.limiter: CallAdmission = admission or LocalCap(settings.max_calls, settings.retry_after)
        self.ctx = ctx = UaContext(settings, self.limiter)
        self.calls: dict[str, Call] = ctx.calls
        self.stats = ctx.stats
        self.timers = ctx.timers
        self.rate = CallRate(settings.max_cps)
        self.transactions: dict[ServerKey, ServerTxn] = {}   # server side
        self.client = UserAgentClient(ctx, self.hangup, self._dialog_response, self._dialog_timeout)
        ctx.timers.on("server", self._txn_deadline, self._txn_fire)
        ctx.timers.on("call", self._call_deadline, self._call_fire)

    # -- the sans-IO surface ---------------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float, transport: str = "udp") -> None:
        self.stats["received"] += 1
        self.ctx.now = now
        try:
            msg = parse_message(data, stream=transport != "udp")
        except SipParseError as e:
            self.stats["malformed"] += 1
            answer = malformed_answer(data, e, self.ctx.token(8))
            if answer is not None:
                self.ctx.send(answer, addr, transport)
            return
        try:
            if isinstance(msg, Request):
                self._on_request(msg, addr, now, transport)
            else:
                self.client.receive_response(msg, now)
        except (ValueError, KeyError, IndexError) as e:   # bad input deeper than validation saw
            self.stats["rejected_late"] += 1
            if isinstance(msg, Request) and msg.method != "ACK":
                self.ctx.send(bytes(make_response(msg, 400, f"Bad Request: {str(e)[:60]}")), addr, transport)

    def datagrams_to_send(self) -> list[tuple[bytes, tuple[str, int], str]]:
        ctx = self.ctx
        out, ctx.outbox = ctx.outbox, []
        return out

    def next_event(self) -> UaEvent | None:
        events = self.ctx.events
        return events.popleft() if events else None

    def get_timer(self) -> float | None:
        return self.ctx.timers.next_deadline()

    def handle_timer(self, now: float) -> None:
        self.ctx.now = now
        self.ctx.timers.fire_due(now)

    # -- timers of the server side: every object whose deadline may have changed is (re)pushed ---
    def _txn_deadline(self, key: ServerKey, txn: ServerTxn) -> float | None:
        return txn.timer() if self.transactions.get(key) is txn else None

    def _txn_fire(self, key: ServerKey, txn: ServerTxn, now: float) -> None:
        for data in txn.handle_timer(now):
            self.stats["retransmitted"] += 1
            self.ctx.send(data, txn.addr, "tcp" if txn.reliable else "udp")
        self._touch_server(txn, now)

    def _call_deadline(self, call_id: str, call: Call) -> float | None:
        return call.timer.deadline if self.calls.get(call_id) is call else None

    def _call_fire(self, call_id: str, call: Call, now: float) -> None:
        call.timer.deadline = None
        self._session_timer_fired(call, now)
        self._touch_call(call)

    def _touch_server(self, txn: ServerTxn, now: float) -> None:
        key = txn.key
        if txn.terminated:
            if self.transactions.get(key) is txn:
                del self.transactions[key]
            if isinstance(txn, ServerInviteTransaction) and txn.timed_out and txn.final_status \
                    and txn.final_status < 300:
                self._no_ack(txn, now)
            return
        self.ctx.timers.push("server", key, txn)

    def _touch_call(self, call: Call) -> None:
        self.ctx.timers.push("call", call.call_id, call)

    # -- owner actions ---------------------------------------------------------------------------
    def answer(self, call_id: str, rtp_port: int, now: float, extra: tuple[tuple[str, str], ...] = ()
               ) -> sdp.Negotiated | None:
        """Answer an incoming call with 200 OK and our SDP; returns the agreed media (None if the
        INVITE had no offer: then the answer comes in the ACK)."""
        call = self.calls[call_id]
        if call.state != CallState.INCOMING or call.invite_txn is None:
            return call.media
        call.rtp_port = rtp_port
        call.session_id = self.ctx.rand.randrange(1, 2**31)
        body = sdp_body(call.invite)
        offer = sdp.parse_sdp(body) if body else None
        if offer is not None:
            try:
                call.local_sdp, call.media = sdp.answer(offer, self.settings.host, rtp_port, call.session_id,
                                                        codecs=self.settings.codecs)
            except sdp.SdpError:
                self.reject(call_id, 488, now)
                return None
        else:
            call.local_sdp = sdp.offer(self.settings.host, rtp_port, call.session_id, codecs=self.settings.codecs)
        call.dialog = uas_dialog(call.invite, call.local_tag, call.peer, call.transport)
        hdrs = (self._record_route(call.invite) + self.ctx.contact_headers()
                + self._session_timer_headers(call, call.invite, now) + list(extra))
        hdrs.append(("Content-Type", "application/sdp"))
        resp = make_response(call.invite, 200, to_tag=call.local_tag, extra=tuple(hdrs),
                             body=bytes(call.local_sdp), received=call.peer)
        self._respond(call.invite_txn, resp, now)
        call.state = CallState.ANSWERED
        return call.media

    def ring(self, call_id: str, now: float) -> None:
        call = self.calls.get(call_id)
        if call and call.state == CallState.INCOMING and call.invite_txn:
            self._respond(call.invite_txn, make_response(
                call.invite, 180, to_tag=call.local_tag,
                extra=tuple(self._record_route(call.invite) + self.ctx.contact_headers())), now)

    def reject(self, call_id: str, status: int, now: float, extra: tuple[tuple[str, str], ...] = ()) -> None:
        call = self.calls.get(call_id)
        if call and call.state == CallState.INCOMING and call.invite_txn:
            self._respond(call.invite_txn, make_response(call.invite, status, to_tag=call.local_tag, extra=extra),
                          now)
            self.ctx.end(call, f"rejected:{status}")

    def hangup(self, call_id: str, now: float) -> None:
        call = self.calls.get(call_id)
        if call is None or call.state == CallState.ENDED:
            return
        if call.inbound and call.state == CallState.INCOMING:
            self.reject(call_id, 480, now)
            return
        if call.state in (CallState.CALLING, CallState.EARLY) and not call.inbound:
            if not call.cancel_sent:
                call.cancel_sent = True
                self.client.cancel(call, now)
            return
        if call.inbound and call.state == CallState.ANSWERED and call.invite_txn is not None \
                and call.invite_txn.state == TxnState.ACCEPTED:
            # RFC 3261 15: no BYE before the ACK for our 2xx (or its timeout); the owner is done now
            call.bye_after_ack = True
            self.ctx.end(call, "local_bye")
            return
        self._send_in_dialog(call, "BYE", now, purpose="bye")
        self.ctx.end(call, "local_bye")

    def refer(self, call_id: str, target: str, now: float) -> None:
        call = self.calls.get(call_id)
        if call is None or call.dialog is None or call.state not in (CallState.ANSWERED, CallState.CONFIRMED):
            self.ctx.emit(TransferResult(call_id, False, "no established dialog"))
            return
        local = f"<sip:{self.settings.user}@{self.settings.host}:{self.settings.port}>"
        self._send_in_dialog(call, "REFER", now, purpose="refer",
                             extra=(("Refer-To", f"<{target}>"), ("Referred-By", local)) +
                             tuple(self.ctx.contact_headers()))

    def invite(self, target: str, dest: tuple[str, int], rtp_port: int, now: float, transport: str = "udp",
               from_user: str | None = None, credentials: tuple[str, str] | None = None) -> str:
        """Place a call to `target` (a SIP URI) via `dest`; returns the Call-ID."""
        return self.client.invite(target, dest, rtp_port, now, transport, from_user, credentials)

    def register(self, settings: RegistrationSettings, dest: tuple[str, int], now: float) -> None:
        self.client.register(settings, dest, now)

    def keepalive(self, dest: tuple[str, int], interval: float, now: float) -> None:
        """Send OPTIONS to `dest` every `interval` seconds (NAT bindings, trunk health); 0 stops.
        Answers are counted in `stats` as keepalive_ok / keepalive_failed / timeout_keepalive."""
        self.client.keepalive(dest, interval, now)

    def unregister(self, aor: str, now: float) -> None:
        self.client.unregister(aor, now)

    def registered(self, aor: str) -> bool:
        return self.client.registered(aor)

    # -- requests --------------------------------------------------------------------------------
    def _on_request(self, req: Request, addr: tuple[str, int], now: float, transport: str) -> None:
        rej = check_request(req, SUPPORTED)
        if rej is not None:
            self.stats[f"rejected_{rej.status}"] += 1
            if req.method != "ACK":
                self.ctx.send(bytes(make_response(req, rej.status, rej.reason, to_tag=self.ctx.token(8),
                                               extra=rej.headers, received=addr)), addr, transport)
            return
        self.stats[f"request_{req.method}" if req.method in ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "NOTIFY",
                                                               "REFER", "UPDATE") else "request_other"] += 1
        key = server_key(req, transport)
        if req.method == "ACK":
            invite_txn = self.transactions.get(key)
            if isinstance(invite_txn, ServerInviteTransaction) \
                    and invite_txn.state in (TxnState.COMPLETED, TxnState.CONFIRMED):
                invite_txn.on_ack(now)
                self._touch_server(invite_txn, now)
                return
            self._on_ack(req, now)
            return
        existing = self.transactions.get(key)
        if existing is not None:
            self.stats["retransmission_absorbed"] += 1
            for data in existing.on_request_retransmission(now):
                self.ctx.send(data, existing.addr, transport)
            return
        reliable = transport != "udp"
        txn: ServerTxn
        if req.method == "INVITE":
            txn = ServerInviteTransaction(req, addr, reliable, now, self.settings.timers)
        else:
            txn = ServerTransaction(req, addr, reliable, now, self.settings.timers)
        txn.key = key
        self.transactions[key] = txn
        to_tag = parse_name_addr(req.headers.get("To") or "").tag
        if req.method == "CANCEL":
            self._on_cancel(req, txn, now)
        elif to_tag and (req.method != "INVITE" or req.call_id in self.calls):
            self._in_dialog(req, txn, to_tag, now, addr, transport)
        elif isinstance(txn, ServerInviteTransaction):
            # an INVITE naming a dialog we never had (RFC 3261 8.2.2.2 lets us take it as new)
            self._new_call(req, txn, addr, now, transport, to_tag)
        elif req.method == "OPTIONS":
            self._respond(txn, make_response(req, 200, to_tag=self.ctx.token(8), received=addr, extra=(
                ("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", ", ".join(sorted(SUPPORTED))),
                ("User-Agent", self.settings.user_agent))), now)
        elif req.method in ("BYE", "NOTIFY", "INFO", "UPDATE", "REFER"):
            self._respond(txn, make_response(req, 481, to_tag=self.ctx.token(8), received=addr), now)
        else:
            status = 405 if req.method in KNOWN_NOT_ALLOWED else 501
            self._respond(txn, make_response(req, status, to_tag=self.ctx.token(8), received=addr,
                                             extra=(("Allow", ALLOW),)), now)

    def _new_call(self, req: Request, txn: ServerInviteTransaction, addr: tuple[str, int], now: float,
                  transport: str, tag: str = "") -> None:
        tag = tag or self.ctx.token(8)

        def refuse(status: int, extra: tuple[tuple[str, str], ...] = ()) -> None:
            self.stats[f"invite_{status}"] += 1
            self._respond(txn, make_response(req, status, to_tag=tag, extra=extra, received=addr), now)

        if not self.settings.allows(addr[0]):
            refuse(403)
            return
        rej = check_invite_body(req)
        if rej is not None:
            refuse(rej.status, rej.headers)
            return
        offer = None
        body = sdp_body(req)
        if body:
            try:
                offer = sdp.parse_sdp(body)
                sdp.answer(offer, self.settings.host, 1, 0, codecs=self.settings.codecs)
            except sdp.SdpError:
                refuse(488)
                return
        if session_timer.too_small(req, self.settings.min_se):
            refuse(422, (("Min-SE", str(self.settings.min_se)),))
            return
        call_id = req.call_id
        if call_id in self.calls:   # same Call-ID, new transaction (a loop or a fork): not a second call
            refuse(482 if self.calls[call_id].state != CallState.ENDED else 481)
            return
        # admission last: only a call we could otherwise take may hold a slot
        retry = self.settings.retry_after if not self.rate.allow(now) else self.limiter.admit(call_id, now)
        if retry is not None:
            self._shed(req, txn, addr, transport, tag, retry)
            return
        self.rate.took()
        call = Call(call_id, tag, True, CallState.INCOMING, req, addr, transport, invite_txn=txn)
        self.calls[call_id] = call
        self._respond(txn, make_response(req, 100, received=addr), now)
        # the caller as the trunk asserts it (RFC 3325) when it does, else the From
        frm = req.headers.get("P-Asserted-Identity") or req.headers.get("From") or ""
        try:
            caller = parse_name_addr(split_list(frm)[0] if frm else "").uri
        except ValueError:
            caller = parse_name_addr(req.headers.get("From") or "").uri
        to = req.headers.get("To") or ""
        self.ctx.emit(IncomingCall(call_id, caller, parse_name_addr(to).uri, offer, addr,
                                         transport, req.headers.items))

    def _shed(self, req: Request, txn: ServerInviteTransaction, addr: tuple[str, int], transport: str, tag: str,
              retry: int) -> None:
        """503 + Retry-After, sent statelessly (as a stateless proxy would): under a flood a refused
        INVITE leaves no transaction and no retransmission timer behind. A retransmission of it is
        asked again, and its ACK is absorbed as a stray."""
        self.stats["invite_503"] += 1
        if self.transactions.get(txn.key) is txn:
            del self.transactions[txn.key]
        self.ctx.send(bytes(make_response(req, 503, to_tag=tag, extra=(("Retry-After", str(retry)),), received=addr)),
                   addr, transport)

    def _on_cancel(self, req: Request, txn: ServerTxn, now: float) -> None:
        invite_key = server_key(req, "tcp" if txn.reliable else "udp", "INVITE")
        inv = self.transactions.get(invite_key)
        if not isinstance(inv, ServerInviteTransaction):
            self._respond(txn, make_response(req, 481, to_tag=self.ctx.token(8)), now)
            return
        call = self.calls.get(inv.request.call_id)
        self._respond(txn, make_response(req, 200, to_tag=call.local_tag if call else ""), now)
        if inv.state == TxnState.PROCEEDING and call is not None and call.state == CallState.INCOMING:
            self._respond(inv, make_response(inv.request, 487, to_tag=call.local_tag), now)
            self.ctx.end(call, "cancelled")

    def _in_dialog(self, req: Request, txn: ServerTxn, to_tag: str, now: float, addr: tuple[str, int],
                   transport: str) -> None:
        call = self.calls.get(req.call_id)
        if call is None or call.local_tag != to_tag or call.dialog is None or call.state == CallState.ENDED:
            self._respond(txn, make_response(req, 481), now)
            return
        seq = req.cseq[0]
        if call.dialog.remote_seq is not None and seq < call.dialog.remote_seq:
            self._respond(txn, make_response(req, 500, "CSeq out of order"), now)
            return
        call.dialog = replace(call.dialog, remote_seq=seq)
        m = req.method
        if m == "BYE":
            self._respond(txn, make_response(req, 200), now)
            self.ctx.end(call, "remote_bye")
        elif m in ("INVITE", "UPDATE"):
            self._reinvite(call, req, txn, now)
        elif m == "NOTIFY":
            self._respond(txn, make_response(req, 200), now)
            self._on_notify(call, req)
        elif m == "INFO":
            self._respond(txn, make_response(req, 200), now)
            dtmf = dtmf_from_info(req)
            if dtmf is not None:
                self.ctx.emit(DtmfInfo(call.call_id, *dtmf))
        elif m == "OPTIONS":
            self._respond(txn, make_response(req, 200, extra=(("Allow", ALLOW),)), now)
        elif m == "REFER":
            self._respond(txn, make_response(req, 403, "Transfer not accepted"), now)
        else:
            self._respond(txn, make_response(req, 405 if m in KNOWN_NOT_ALLOWED else 501,
                                             extra=(("Allow", ALLOW),)), now)

    def _reinvite(self, call: Call, req: Request, txn: ServerTxn, now: float) -> None:
        if call.reinvite_pending and req.method == "INVITE":
            self._respond(txn, make_response(req, 491), now)
            return
        contacts = req.headers.get_all("Contact")
        if contacts and call.dialog is not None:
            call.dialog = replace(call.dialog, remote_target=parse_name_addr(contacts[0]).uri)
        hdrs = self._record_route(req) + self.ctx.contact_headers() + self._session_timer_headers(call, req, now)
        body = b""
        offered = sdp_body(req)        # None: a body without SDP, answered like an offerless request
        if offered:
            try:
                offer = sdp.parse_sdp(offered)
                call.sdp_version += 1
                call.local_sdp, media = sdp.answer(offer, self.settings.host, call.rtp_port, call.session_id,
                                                   call.sdp_version, codecs=self.settings.codecs)
            except sdp.SdpError:
                self._respond(txn, make_response(req, 488), now)
                return
            body = bytes(call.local_sdp)
            hdrs.append(("Content-Type", "application/sdp"))
            changed = media != call.media
            call.media = media
            if changed:
                self.ctx.emit(MediaChanged(call.call_id, media))
        elif req.method == "INVITE" and call.local_sdp is not None:
            body = bytes(call.local_sdp)   # offerless re-INVITE: we offer what we have
            hdrs.append(("Content-Type", "application/sdp"))
        self._respond(txn, make_response(req, 200, extra=tuple(hdrs), body=body), now)
        if isinstance(txn, ServerInviteTransaction):
            call.invite_txn = txn

    def _on_ack(self, req: Request, now: float) -> None:
        call = self.calls.get(req.call_id)
        if call is None or call.invite_txn is None:
            self.stats["stray_ack"] += 1
            return
        if parse_name_addr(req.headers.get("To") or "").tag != call.local_tag:
            self.stats["stray_ack"] += 1
            return
        txn = call.invite_txn
        if txn.state != TxnState.ACCEPTED or txn.request.cseq[0] != req.cseq[0]:
            self.stats["ack_absorbed"] += 1
            return
        txn.on_ack(now)
        self._touch_server(txn, now)
        if req.body and call.media is None and call.local_sdp is not None:
            try:
                call.media = sdp.accept_answer(call.local_sdp, sdp.parse_sdp(req.body))
            except sdp.SdpError:
                self.stats["bad_ack_sdp"] += 1
        if call.bye_after_ack:
            call.bye_after_ack = False
            self._send_in_dialog(call, "BYE", now, purpose="bye")
        elif call.state == CallState.ANSWERED:
            call.state = CallState.CONFIRMED
            self.ctx.emit(CallConfirmed(call.call_id, call.media))

    def _on_notify(self, call: Call, req: Request) -> None:
        if not (req.headers.get("Event") or "").lower().startswith("refer"):
            return
        line = req.body.decode("utf-8", "replace").strip().split("\r\n")[0].split("\n")[0]
        parts = line.split(" ", 2)
        if len(parts) >= 2 and parts[1].isdigit():
            code = int(parts[1])
            if code >= 200:
                self.ctx.emit(TransferResult(call.call_id, code < 300, line))

    def _no_ack(self, txn: ServerInviteTransaction, now: float) -> None:
        call = self.calls.get(txn.request.call_id)
        if call is not None and (call.state != CallState.ENDED or call.bye_after_ack) and call.invite_txn is txn:
            if call.bye_after_ack:
                call.bye_after_ack = False
                self._send_in_dialog(call, "BYE", now, purpose="bye")
                return
            self.stats["no_ack"] += 1
            self._send_in_dialog(call, "BYE", now, purpose="bye")
            self.ctx.end(call, "no_ack")

    # -- answers to our in-dialog requests (the client side hands them back) --------------------
    def _dialog_response(self, purpose: str, call: Call, resp: Response, now: float) -> None:
        if purpose == "reinvite":
            if 200 <= resp.status < 300:
                self.client.ack_2xx(call, resp, now)
            if resp.status >= 200:
                call.reinvite_pending = False
            if resp.status in (408, 481):
                self.hangup(call.call_id, now)
            elif resp.status == 491 and call.timer.we_refresh and call.state != CallState.ENDED:
                # glare with the peer's own re-INVITE: try our refresh again shortly (RFC 3261 14.1)
                call.timer.deadline = now + self.ctx.rand.uniform(2.1, 4.0)
                self._touch_call(call)
        elif purpose == "refer" and resp.status >= 300:
            self.ctx.emit(TransferResult(call.call_id, False, f"REFER answered {resp.status}"))

    def _dialog_timeout(self, purpose: str, call: Call, now: float) -> None:
        if purpose == "refer":
            self.ctx.emit(TransferResult(call.call_id, False, "REFER timed out"))
        elif purpose == "reinvite":
            call.reinvite_pending = False
            self.hangup(call.call_id, now)

    # -- session timers (RFC 4028) ---------------------------------------------------------------
    def _session_timer_headers(self, call: Call, req: Request, now: float) -> list[tuple[str, str]]:
        call.timer, headers = session_timer.negotiate(req, self.settings.min_se, self.settings.session_expires)
        call.timer.arm(now)
        self._touch_call(call)
        return headers

    def _session_timer_fired(self, call: Call, now: float) -> None:
        if call.state not in (CallState.ANSWERED, CallState.CONFIRMED):
            call.timer.deadline = None
            return
        if call.timer.we_refresh:
            role = "uas" if call.inbound else "uac"
            call.sdp_version += 1
            if call.local_sdp is not None:
                call.local_sdp = sdp.with_version(call.local_sdp, call.sdp_version)
            call.reinvite_pending = True
            self._send_in_dialog(call, "INVITE", now, purpose="reinvite",
                                 extra=(("Session-Expires", f"{call.timer.interval};refresher={role}"),
                                        ("Supported", "timer"), ("Content-Type", "application/sdp"))
                                 + tuple(self.ctx.contact_headers()),
                                 body=bytes(call.local_sdp) if call.local_sdp else b"")
            call.timer.arm(now)
        else:
            self.stats["session_expired"] += 1
            self._send_in_dialog(call, "BYE", now, purpose="bye")
            self.ctx.end(call, "session_expired")

    # -- helpers ---------------------------------------------------------------------------------
    def _send_in_dialog(self, call: Call, method: str, now: float, purpose: str,
                        extra: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> None:
        if call.dialog is None:
            return
        branch = MAGIC + self.ctx.token(12)
        call.dialog, req = call.dialog.next_request(method, self.settings.host, self.settings.port, branch,
                                                    extra=extra, body=body)
        self.client.start(req, call.dialog.destination(), call.dialog.transport, purpose, call.call_id, now)

    def _respond(self, txn: ServerTxn, resp: Response, now: float) -> None:
        for data in txn.respond(resp, now):
            self.ctx.send(data, txn.addr, "tcp" if txn.reliable else "udp")
        self._touch_server(txn, now)

    def forget(self, call_id: str) -> None:
        """Drop an ended call's record (the owner calls this once media is torn down)."""
        call = self.calls.get(call_id)
        if call is not None and call.state == CallState.ENDED:
            del self.calls[call_id]

    @staticmethod
    def _record_route(req: Request) -> list[tuple[str, str]]:
        """Dialog-creating responses echo the Record-Route (RFC 3261 12.1.1)."""
        return [("Record-Route", rr) for rr in req.headers.get_all("Record-Route")]
