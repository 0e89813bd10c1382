"""Browser calls: `GET /` (the call page), `POST /webrtc/offer` (SDP offer in, answer out) and
`GET /webrtc/config` (ICE servers, codecs and the tenants a call may belong to, for the page).

The offer's JSON may name the call's tenant (`{"type": "offer", "sdp": ..., "tenant": "acme"}`,
the page's `?tenant=acme`); it must be a configured tenant (`WebRTCSettings.choose_tenant`), so a
browser call reaches the supervisors who can see it. Every error answers JSON `{"error": ...}`.

One `WebRTCCall` per peer connection: the call starts when ICE+DTLS connect (so the greeting is
not played into the void), runs through `runtime.calls.run(transport)`, and its engine events go
to the page over the peer's "events" data channel (fed by `session.subscribe()`). The page's
keypad sends DTMF and its hang-up button a "hangup" message on the same channel. The same channel
carries both sides' levels (`{"type": "levels", t, caller, bot}`, 10 a second, dBFS, for the
page's timeline; never stored) and the bot's view of the network every 2 s (`{"type": "network"}`,
from aiortc's getStats: `WebRTCTransport.network_stats`).
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any, Callable

from aiohttp import web
from aiortc import RTCDataChannel, RTCSessionDescription

from ..engine.admission import AdmissionController
from ..engine.events import Event
from ..engine.port import CallInfo
from ..supervisor.levels import CallLevels, LevelBoard, LevelSample, board_for
from ..supervisor.network import network_quality
from ..transports.webrtc import WebRTCSettings, WebRTCTransport, new_peer_connection, offer_problem
from ..web import page, setup_static
from .web_runtime import WebRuntime

log = logging.getLogger(__name__)

MAX_SDP = 64 * 1024
SESSION_WAIT = 3.0
NETWORK_EVERY = 2.0  # seconds between the bot's network figures sent to the page


class WebRTCCalls:
    """The browser calls of this process (for limits, shutdown and leak checks). Each holds a slot of
    the process's admission controller (bot/engine/admission.py) from its offer to its end."""

    def __init__(self, runtime: WebRuntime, settings: WebRTCSettings, levels: LevelBoard | None = None) -> None:
        self.runtime = runtime
        self.settings = settings
        self.levels = levels
        self.admission: AdmissionController | None = runtime.admission
        self.calls: dict[str, WebRTCCall] = {}
        self.started = 0
        self.rejected = 0

    def refusal(self) -> web.Response | None:
        """The JSON 503 for an offer this process cannot take (None: take it and hold a slot)."""
        if len(self.calls) >= self.settings.max_peers:
            return self._refuse("too many browser calls on this worker", "max_peers", 5)
        return None

    def admit(self, call_id: str) -> web.Response | None:
        if self.admission is None:
            return None
        d = self.admission.admit(call_id, "webrtc", asyncio.get_running_loop().time())
        if d.admitted:
            return None
        why = "this worker is at its call capacity" if d.reason == "capacity" else "this worker is overloaded"
        return self._refuse(f"{why}; try again in {d.retry_after} s", d.reason, d.retry_after)

    def _refuse(self, error: str, reason: str, retry_after: int) -> web.Response:
        self.rejected += 1
        return web.json_response({"error": error, "reason": reason, "retry_after": retry_after}, status=503,
                                 headers={"Retry-After": str(retry_after)})

    def forget(self, call_id: str) -> None:
        self.calls.pop(call_id, None)
        if self.admission is not None:
            self.admission.release(call_id, "webrtc")

    async def close_all(self) -> None:
        await asyncio.gather(*(c.close("shutdown") for c in list(self.calls.values())), return_exceptions=True)


class WebRTCCall:
    def __init__(self, registry: WebRTCCalls, transport: WebRTCTransport) -> None:
        self.registry = registry
        self.transport = transport
        self.call_id = transport.info.call_id
        self.channel: RTCDataChannel | None = None
        self.session: Any = None
        self._connected = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._forward: asyncio.Task[None] | None = None
        self._side: list[asyncio.Task[None]] = []  # levels and network figures to the page
        self._pending: list[str] = []
        self._queue: asyncio.Queue[Event] | None = None
        self._unlevel: Callable[[], None] | None = None
        transport.on_start_output = self._attach_session
        transport.pc.on("connectionstatechange", self._on_state)
        transport.pc.on("datachannel", self._on_datachannel)

    # ---- peer events --------------------------------------------------------------------------
    def _on_state(self) -> None:
        if self.transport.pc.connectionState == "connected":
            self._connected.set()

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != "events":
            return
        self.channel = channel
        channel.on("message", self._on_message)
        channel.on("open", self._flush)
        self._flush()

    def _on_message(self, message: Any) -> None:
        try:
            msg = json.loads(message) if isinstance(message, str) else {}
        except ValueError:
            return
        if msg.get("type") == "dtmf":
            try:
                self.transport.push_dtmf(str(msg.get("digit", "")))
            except ValueError:
                pass
        elif msg.get("type") == "hangup":
            asyncio.ensure_future(self.close("caller hung up"))

    def send(self, obj: dict[str, Any], droppable: bool = False) -> None:
        """Send now, or keep for when the channel opens (not `droppable` samples: they are stale by then)."""
        text = json.dumps(obj, separators=(",", ":"))
        ch = self.channel
        if ch is not None and ch.readyState == "open":
            if not droppable or ch.bufferedAmount < 64 * 1024:  # a stalled channel loses levels, not events
                ch.send(text)
        elif len(self._pending) < 200 and not droppable:
            self._pending.append(text)

    def _flush(self) -> None:
        ch = self.channel
        if ch is not None and ch.readyState == "open":
            pending, self._pending = self._pending, []
            for text in pending:
                ch.send(text)

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._main = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        runtime = self.registry.runtime
        try:
            try:
                await asyncio.wait_for(self._connected.wait(), self.registry.settings.connect_timeout)
            except asyncio.TimeoutError:
                log.info("webrtc %s: peer never connected", self.call_id)
                return
            self.send({"type": "connected", "call_id": self.call_id, "mono": time.monotonic()})
            run = asyncio.ensure_future(runtime.calls.run(self.transport))
            if self.session is None:  # the engine did not call start_output at once: look it up
                self._attach(await self._find_session(run))
            await run
        except asyncio.CancelledError:
            pass
        except Exception:  # an engine failure ends this call, never the server
            log.exception("webrtc %s: call failed", self.call_id)
        finally:
            await self._cleanup()

    def _attach_session(self) -> None:
        if self.session is None:
            self._attach(self.registry.runtime.calls.get(self.call_id))

    def _attach(self, session: Any) -> None:
        if session is not None and self.session is None:
            self.session = session
            # what happened before we subscribed (call_started), then everything from now on
            for e in list(getattr(session, "events", ()))[-200:]:
                self.send({"type": "event", "event": e.to_dict()})
            self._forward = asyncio.ensure_future(self._forward_events(session.subscribe()))
            board = self.registry.levels
            if board is not None:
                levels = board.attach(session)
                lq = levels.subscribe()
                self._unlevel = lambda: levels.unsubscribe(lq)
                self._side.append(asyncio.ensure_future(self._forward_levels(levels, lq)))
            self._side.append(asyncio.ensure_future(self._network()))

    async def _forward_levels(self, levels: CallLevels, q: asyncio.Queue[LevelSample]) -> None:
        try:
            while True:
                s = await q.get()
                self.send({"type": "levels", **s.to_dict()}, droppable=True)
        except asyncio.CancelledError:
            pass

    async def _network(self) -> None:
        try:
            while True:
                await asyncio.sleep(NETWORK_EVERY)
                try:
                    q = await network_quality(self.transport)
                except Exception:  # the peer connection is closing
                    continue
                self.send({"type": "network", "network": q}, droppable=True)
        except asyncio.CancelledError:
            pass

    async def _find_session(self, run: asyncio.Task[Any]) -> Any:
        get = self.registry.runtime.calls.get
        deadline = time.monotonic() + SESSION_WAIT
        for _ in range(3):
            await asyncio.sleep(0)
        while not run.done() and time.monotonic() < deadline:
            s = get(self.call_id)
            if s is not None:
                return s
            await asyncio.sleep(0.01)
        return get(self.call_id)

    async def _forward_events(self, q: asyncio.Queue[Event]) -> None:
        self._queue = q
        try:
            while True:
                ev = await q.get()
                self.send({"type": "event", "event": ev.to_dict()})
        except asyncio.CancelledError:
            pass

    async def _cleanup(self) -> None:
        for t in self._side:
            t.cancel()
        await asyncio.gather(*self._side, return_exceptions=True)
        self._side = []
        if self._unlevel is not None:
            self._unlevel()
            self._unlevel = None
        if self._forward is not None:
            self._forward.cancel()
            try:
                await self._forward
            except asyncio.CancelledError:
                pass
            self._forward = None
        q = self._queue
        if q is not None:
            while not q.empty():  # the last events (call_ended) still reach the page
                self.send({"type": "event", "event": q.get_nowait().to_dict()})
            if self.session is not None:
                self.session.unsubscribe(q)
        self.send({"type": "ended", "call_id": self.call_id})
        await asyncio.sleep(0.05)  # give SCTP a moment to flush them before the connection closes
        await self.transport.close("ended")
        self.registry.forget(self.call_id)

    async def close(self, reason: str) -> None:
        """End the call from our side (shutdown, caller's hang-up message)."""
        await self.transport.close(reason)  # the engine reads Hangup and finishes the call
        main = self._main
        if main is None:
            self.registry.forget(self.call_id)
            return
        try:
            await asyncio.wait_for(asyncio.shield(main), 5.0)
        except asyncio.TimeoutError:
            main.cancel()
            try:
                await main
            except asyncio.CancelledError:
                pass
        except asyncio.CancelledError:
            pass


def _token_tenants(runtime: WebRuntime) -> tuple[str, ...]:
    """Tenants with supervisor tokens: a browser call may belong to any of them."""
    return tuple(dict.fromkeys(tenant for tenant, _ in runtime.settings.supervisor.tokens))


def bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


CALLS_KEY = web.AppKey("duplexbot_webrtc_calls", WebRTCCalls)


def setup(app: web.Application, runtime: WebRuntime) -> None:
    registry = WebRTCCalls(runtime, runtime.settings.webrtc, board_for(app, runtime.calls))
    app[CALLS_KEY] = registry
    setup_static(app)
    configured = _token_tenants(runtime)

    async def offer(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return bad_request("the body must be JSON {type, sdp, tenant}")
        sdp = body.get("sdp") if isinstance(body, dict) else None
        if not isinstance(sdp, str) or body.get("type") != "offer" or not sdp or len(sdp) > MAX_SDP:
            return bad_request('expected {"type": "offer", "sdp": "...", "tenant": "..."}')
        problem = offer_problem(sdp)
        if problem is not None:
            return bad_request(problem)
        try:
            tenant = registry.settings.choose_tenant(str(body.get("tenant") or ""), configured)
        except ValueError as e:
            return bad_request(str(e))
        call_id = "webrtc-" + secrets.token_hex(8)
        refused = registry.refusal() or registry.admit(call_id)   # before any peer connection or media
        if refused is not None:
            return refused
        info = CallInfo(call_id=call_id, transport="webrtc", caller=f"browser:{request.remote or ''}",
                        callee="web", tenant=tenant)
        pc = new_peer_connection(registry.settings)
        transport = WebRTCTransport(pc, info, registry.settings)
        call = WebRTCCall(registry, transport)
        registry.calls[call_id] = call
        try:
            transport.add_bot_track()
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)  # aiortc gathers every candidate here
            transport.attach_rate(pc.localDescription.sdp)
        except Exception:  # malformed or unsupported offer: the peer's fault; aiortc's words stay in the log
            log.info("webrtc %s: cannot answer the offer", call_id, exc_info=True)
            registry.forget(call_id)
            await transport.close("bad offer")
            return bad_request("cannot answer this offer: it offers no audio this bot can send and receive "
                               "(Opus or PCMU, sendrecv)")
        registry.started += 1
        call.start()
        return web.json_response({"type": "answer", "sdp": pc.localDescription.sdp, "call_id": call_id,
                                  "tenant": tenant})

    async def config(request: web.Request) -> web.Response:
        s = registry.settings
        try:
            default = s.choose_tenant("", configured)
        except ValueError:
            default = ""  # several tenants and none set: the page must name one
        return web.json_response({"iceServers": s.browser_ice_servers(), "codecs": list(s.codecs),
                                  "tenants": list(s.known_tenants(configured)), "tenant": default})

    async def on_shutdown(app: web.Application) -> None:
        await registry.close_all()

    app.router.add_get("/", page("index.html"))
    app.router.add_post("/webrtc/offer", offer)
    app.router.add_get("/webrtc/config", config)
    app.on_shutdown.append(on_shutdown)
