"""The asyncio edge of the SIP stack: UDP (sip/udp.py) and TCP (sip/tcp.py) listeners feeding the
UA core, the core's timer, and the calls it sets up (their RTP sockets and the 20 ms media clock
live in sip/media_clock.py). All protocol decisions live in the sans-IO cores."""
from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Awaitable, Callable, Coroutine

from .call import CallHangup, SipCall
from .events import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallProgress,
    DtmfInfo,
    IncomingCall,
    MediaChanged,
    RegistrationChanged,
    TransferResult,
    UaEvent,
)
from .media import DtmfDigit, MediaSettings, RtpSession
from .media_clock import MediaClock, RtpPair, RtpPorts
from .message import parse_name_addr
from .ratelimit import CallAdmission, HeldWhileHandled, LocalCap
from .registration import RegistrationSettings
from .tcp import Peer, TcpConnection
from .ua import UaSettings, UserAgent
from .ua_state import CallState
from .udp import Datagram, UdpListener

log = logging.getLogger("sip")
CallHandler = Callable[[SipCall], Awaitable[None]]


@dataclass(frozen=True)
class ServerSettings:
    bind: str = "0.0.0.0"
    port: int = 5060                 # 0: pick a free port (tests)
    advertise: str = "127.0.0.1"     # address in Via/Contact/SDP
    rtp_ports: tuple[int, int] = (20000, 40000)
    tcp: bool = True
    ua: UaSettings = field(default_factory=UaSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    answer_delay: float = 0.0        # ring (180) this long before answering; 0: answer at once with
                                     # 100 + 200 only (a 180 just before the 200 can overtake it)
    tick: float = 0.020              # media clock period; 0 disables media (signalling benchmarks)


class SipServer:
    def __init__(self, settings: ServerSettings, on_call: CallHandler | None = None,
                 admission: CallAdmission | None = None):
        """`admission` decides whether a new inbound call is taken before anything is set up for
        it (default: the UA's own cap of `settings.ua.max_calls`); refused INVITEs get 503."""
        self.settings = settings
        self.on_call = on_call
        self.admission = admission
        self.ua: UserAgent | None = None
        self.port = settings.port
        self.calls: dict[str, SipCall] = {}
        self.stats: Counter[str] = Counter()
        self._udp: UdpListener | None = None
        self._slots: HeldWhileHandled | None = None
        self._tcp: dict[Peer, TcpConnection] = {}
        self._tcp_server: asyncio.AbstractServer | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: dict[str, asyncio.Future[SipCall]] = {}
        self._rtp_ports = RtpPorts(settings.bind, settings.rtp_ports)
        self.registrations: dict[str, bool] = {}
        self._rtp_for: dict[str, tuple[RtpPair, int]] = {}
        self.media_clock = MediaClock(settings.tick, self.calls, self.stats, self._rtp_timed_out)

    @property
    def tick_lateness(self) -> deque[float]:
        return self.media_clock.tick_lateness

    @property
    def tick_work(self) -> deque[float]:
        return self.media_clock.tick_work

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> "SipServer":
        loop = asyncio.get_running_loop()
        s = self.settings
        for attempt in range(20):
            udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            udp_sock.bind((s.bind, s.port))
            port = udp_sock.getsockname()[1]
            tcp_server = None
            if s.tcp:
                try:
                    tcp_server = await loop.create_server(self._tcp_connection, s.bind, port, reuse_address=True)
                except OSError:
                    udp_sock.close()
                    if s.port == 0 and attempt < 19:   # a free UDP port whose TCP twin is taken: try another
                        continue
                    raise
            break
        self.port = port
        self._tcp_server = tcp_server
        ua_settings = s.ua
        if ua_settings.port != self.port or ua_settings.host != s.advertise:
            ua_settings = replace(ua_settings, port=self.port, host=s.advertise)
        self._slots = HeldWhileHandled(self.admission or LocalCap(ua_settings.max_calls, ua_settings.retry_after))
        self.ua = UserAgent(ua_settings, self._slots)
        self._udp = UdpListener(udp_sock, self._receive_udp)
        self._udp.start()
        if s.tick > 0:
            self._ticker = asyncio.create_task(self.media_clock.run(), name="sip-media-clock")
        log.info("SIP listening on %s:%d (udp%s)", s.bind, self.port, "+tcp" if s.tcp else "")
        return self

    async def close(self) -> None:
        ua = self.ua
        if ua is not None:                              # calls exist only once start() made the UA
            for cid, c in list(ua.calls.items()):
                if c.state == CallState.INCOMING:       # still ringing: tell the caller to try elsewhere
                    ua.reject(cid, 503, self._now(), (("Retry-After", "5"),))
            for call in list(self.calls.values()):
                if not call.ended.is_set():
                    ua.hangup(call.call_id, self._now())
                    self._finish(call, "shutdown")
        self._pump()
        for pair, _ in self._rtp_for.values():     # outbound calls still ringing
            pair.close()
        self._rtp_for.clear()
        if self._timer:
            self._timer.cancel()
        if self._ticker:
            self._ticker.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, *( [self._ticker] if self._ticker else []), return_exceptions=True)
        if self._udp is not None:
            self._udp.close()
        if self._tcp_server:
            self._tcp_server.close()
            for conn in list(self._tcp.values()):
                conn.close()
            await self._tcp_server.wait_closed()

    # -- outbound actions --------------------------------------------------------------------------
    async def call(self, target: str, dest: tuple[str, int], timeout: float = 30.0, transport: str = "udp",
                   credentials: tuple[str, str] | None = None) -> SipCall:
        """Place a call; returns the answered call (raises ConnectionError when it fails)."""
        ua = self._started()
        rtp = self._rtp_ports.open()
        call_id = ua.invite(target, dest, rtp[1], self._now(), transport, credentials=credentials)
        fut = asyncio.get_running_loop().create_future()
        self._pending[call_id] = fut
        self._rtp_for[call_id] = rtp
        self._pump()
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            ua.hangup(call_id, self._now())
            self._pump()
            raise ConnectionError(f"call to {target} not answered in {timeout} s") from None
        finally:
            self._pending.pop(call_id, None)

    def register(self, settings: RegistrationSettings, dest: tuple[str, int]) -> None:
        self._started().register(settings, dest, self._now())
        self._pump()

    def keepalive(self, dest: tuple[str, int], interval: float) -> None:
        """OPTIONS to `dest` every `interval` s (0 stops): keeps NAT bindings open, probes the trunk."""
        self._started().keepalive(dest, interval, self._now())
        self._pump()

    # -- core plumbing -----------------------------------------------------------------------------
    def _started(self) -> UserAgent:
        """The UA core, which exists once `start()` has run."""
        if self.ua is None:
            raise RuntimeError("the SIP server is not started (await SipServer.start() first)")
        return self.ua

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _receive(self, data: bytes, addr: tuple[str, int], transport: str) -> None:
        self._feed(data, addr, self._now(), transport)
        self._pump()

    def _tcp_connection(self) -> TcpConnection:
        return TcpConnection(self._tcp, self._receive, self.stats)

    def _receive_udp(self, batch: list[Datagram]) -> None:
        """Datagrams from the UDP listener (which puts what keeps calls alive before call set-up)."""
        now = self._now()
        for data, addr in batch:
            self._feed(data, addr, now, "udp")
        self._pump()

    def _feed(self, data: bytes, addr: tuple[str, int], now: float, transport: str) -> None:
        try:
            self._started().receive_datagram(data, addr, now, transport)
        except Exception:   # a bug must not take the listener down; count it and go on
            self.stats["internal_error"] += 1
            log.exception("SIP core failed on a message from %s", addr)

    def kernel_drops(self) -> int | None:
        """Datagrams the kernel dropped on the SIP UDP socket (receive buffer full); None: unknown."""
        return self._udp.kernel_drops() if self._udp is not None else None

    def udp_stats(self) -> dict[str, int]:
        """The UDP listener's counters (sip/udp.py) and its current backlog."""
        if self._udp is None:
            return {}
        return {**self._udp.stats, "backlog": self._udp.backlog}

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            self._started().handle_timer(self._now())
        except Exception:
            self.stats["internal_error"] += 1
            log.exception("SIP core failed in a timer")
        self._pump()

    def _pump(self) -> None:
        ua = self.ua
        if ua is None:
            return
        for data, addr, transport in ua.datagrams_to_send():
            self._send(data, addr, transport)
        while (ev := ua.next_event()) is not None:
            try:
                self._on_event(ev)
            except Exception:
                self.stats["internal_error"] += 1
                log.exception("SIP event handler failed on %r", ev)
        for data, addr, transport in ua.datagrams_to_send():
            self._send(data, addr, transport)
        when = ua.get_timer()
        if when != self._timer_at:
            if self._timer:
                self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_at(when, self._on_timer) if when is not None else None
            self._timer_at = when

    def _send(self, data: bytes, addr: tuple[str, int], transport: str) -> None:
        self.stats[f"sent_{transport}"] += 1
        if transport == "tcp":
            conn = self._tcp.get(addr)
            if conn is not None and conn.transport and not conn.transport.is_closing():
                conn.transport.write(data)
                return
            self._spawn(self._tcp_connect_send(data, addr))
            return
        if self._udp is not None:
            try:
                self._udp.sendto(data, addr)
            except (OSError, ValueError) as e:
                self.stats["send_error"] += 1
                log.debug("cannot send to %s: %s", addr, e)

    async def _tcp_connect_send(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            loop = asyncio.get_running_loop()
            _, proto = await asyncio.wait_for(loop.create_connection(self._tcp_connection, addr[0], addr[1]), 5)
            proto.send(data)
        except (OSError, asyncio.TimeoutError) as e:
            self.stats["send_error"] += 1
            log.info("cannot open TCP to %s: %s", addr, e)

    def _spawn(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- events ------------------------------------------------------------------------------------
    def _on_event(self, ev: UaEvent) -> None:
        now = self._now()
        if isinstance(ev, IncomingCall):
            self._spawn(self._incoming(ev))
        elif isinstance(ev, CallConfirmed):
            call = self.calls.get(ev.call_id)
            if call is not None:
                if call.session is None and ev.media is not None:
                    call.attach(RtpSession(ev.media, now, self.settings.media))
                if call.session is not None:
                    call.session.open_learning(self._learn_ips(call))
        elif isinstance(ev, MediaChanged):
            call = self.calls.get(ev.call_id)
            if call is not None and call.session is not None:
                call.session.update(ev.media, now)
        elif isinstance(ev, CallEnded):
            call = self.calls.get(ev.call_id)
            if call is not None:
                self._finish(call, ev.reason)
            fut = self._pending.get(ev.call_id)
            if fut is not None and not fut.done():
                fut.set_exception(ConnectionError(f"call failed: {ev.reason}"))
            rtp = self._rtp_for.pop(ev.call_id, None)
            if rtp is not None and call is None:
                rtp[0].close()
        elif isinstance(ev, CallAnswered):
            rtp = self._rtp_for.pop(ev.call_id)
            ua_call = self._started().calls[ev.call_id]
            caller = parse_name_addr(ua_call.invite.headers.get("From") or "").uri
            call = SipCall(self, ev.call_id, caller, ua_call.invite.uri, ua_call.peer, rtp, inbound=False)
            session = RtpSession(ev.media, now, self.settings.media)
            call.attach(session)
            session.open_learning(self._learn_ips(call))
            self.calls[ev.call_id] = call
            fut = self._pending.get(ev.call_id)
            if fut is not None and not fut.done():
                fut.set_result(call)
        elif isinstance(ev, DtmfInfo):
            call = self.calls.get(ev.call_id)
            if call is not None:
                call.deliver_dtmf(DtmfDigit(ev.digit, ev.duration_ms))
        elif isinstance(ev, TransferResult):
            call = self.calls.get(ev.call_id)
            if call is not None:
                call.transfer_done(ev.ok, ev.detail)
        elif isinstance(ev, RegistrationChanged):
            self.registrations[ev.aor] = ev.registered
            log.info("registration %s: %s (%s)", ev.aor, ev.registered, ev.status)
        elif isinstance(ev, CallProgress):
            pass

    def _learn_ips(self, call: SipCall) -> frozenset[str]:
        ips = {call.remote_addr[0]}
        if call.session is not None and call.session.media.remote_addr:
            ips.add(call.session.media.remote_addr[0])
        return frozenset(ips)

    async def _incoming(self, ev: IncomingCall) -> None:
        ua, slots, on_call = self._started(), self._slots, self.on_call
        if slots is None:
            raise RuntimeError("the SIP server has no admission slots (start() sets them up with the UA)")
        if on_call is None:
            ua.reject(ev.call_id, 480, self._now())
            self._pump()
            return
        try:
            rtp = self._rtp_ports.open()
        except OSError:
            ua.reject(ev.call_id, 503, self._now(), (("Retry-After", "5"),))
            self._pump()
            return
        if ua.calls.get(ev.call_id) is None or ua.calls[ev.call_id].state != CallState.INCOMING:
            rtp[0].close()      # cancelled while we opened the socket
            return
        if self.settings.answer_delay:
            ua.ring(ev.call_id, self._now())
            self._pump()
            await asyncio.sleep(self.settings.answer_delay)
            if ua.calls.get(ev.call_id) is None or ua.calls[ev.call_id].state != CallState.INCOMING:
                rtp[0].close()
                return
        now = self._now()
        media = ua.answer(ev.call_id, rtp[1], now)
        call = SipCall(self, ev.call_id, ev.caller, ev.callee, ev.remote_addr, rtp, inbound=True)
        if media is not None:
            call.attach(RtpSession(media, now, self.settings.media))
        self.calls[ev.call_id] = call
        self._pump()
        if ua.calls.get(ev.call_id) is None or ua.calls[ev.call_id].state == CallState.ENDED:
            return
        slots.handler_started(ev.call_id)   # the call's admission slot lasts as long as the handler
        try:
            await on_call(call)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats["handler_error"] += 1
            log.exception("call handler failed for %s", ev.call_id)
        finally:
            if not call.ended.is_set():
                self.hangup(call)
            slots.handler_done(ev.call_id)

    def hangup(self, call: SipCall) -> None:
        if not call.ended.is_set():
            self._started().hangup(call.call_id, self._now())
            self._finish(call, "local")
            self._pump()

    def transfer(self, call: SipCall, target: str) -> None:
        self._started().refer(call.call_id, target, self._now())
        self._pump()

    def _finish(self, call: SipCall, reason: str) -> None:
        if call.ended.is_set():
            return
        call.mark_ended(reason)
        call.rtp.close()
        self.calls.pop(call.call_id, None)
        self.stats[f"ended_{reason.split(':')[0]}"] += 1

    # -- media -------------------------------------------------------------------------------------
    def media_summary(self) -> dict[str, float]:
        """Media clock health and stream counters over the live calls (for benches and metrics)."""
        return self.media_clock.summary()

    def _rtp_timed_out(self, call: SipCall, now: float) -> None:
        self._started().hangup(call.call_id, now)
        self._finish(call, "rtp_timeout")
        self._pump()


__all__ = ["SipServer", "ServerSettings", "CallHandler", "CallHangup"]
