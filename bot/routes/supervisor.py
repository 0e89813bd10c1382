"""The supervisor console's HTTP edge.

    GET    /supervisor                              the console page
    POST   /supervisor/api/login                    {token, name} -> {tenant, actor}
    GET    /supervisor/api/calls                    this tenant's live calls (every worker)
    POST   /supervisor/api/calls/{id}/listen        SDP offer (recvonly) -> answer + listener_id
    DELETE /supervisor/api/listeners/{lid}          stop listening
    POST   /supervisor/api/calls/{id}/whisper       {text}
    POST   /supervisor/api/calls/{id}/takeover      SDP offer (the supervisor's microphone) -> answer
    POST   /supervisor/api/calls/{id}/handback
    GET    /supervisor/ws                           live call list and the watched call's events

REST calls carry `Authorization: Bearer <token>` (and `X-Supervisor-Name`); the WebSocket's first
message is {"type": "auth", "token", "name"} (browsers cannot set headers on WebSockets). Every
error answers JSON `{"error": "..."}`, a wrong token included.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web

from ..supervisor import ConsoleError, Supervisor, SupervisorConsole, SupervisorSettings
from ..transports.webrtc import WebRTCSettings
from ..web import page, setup_static

log = logging.getLogger(__name__)

CONSOLE_KEY = web.AppKey("duplexbot_supervisor_console", SupervisorConsole)
MAX_SDP = 64 * 1024
AUTH_TIMEOUT = 10.0


def json_error(cls: type[web.HTTPException], message: str, **headers: str) -> web.HTTPException:
    """An HTTP error whose body is `{"error": message}` like every other answer of the API."""
    return cls(text=json.dumps({"error": message}), content_type="application/json", headers=headers or None)


def _component(runtime: Any, name: str, cls):
    s = getattr(getattr(runtime, "settings", None), name, None)
    return s if isinstance(s, cls) else cls.from_env()


def setup(app: web.Application, runtime: Any) -> None:
    console = SupervisorConsole(runtime, _component(runtime, "supervisor", SupervisorSettings),
                                _component(runtime, "webrtc", WebRTCSettings))
    app[CONSOLE_KEY] = console
    setup_static(app)

    def who(request: web.Request) -> Supervisor:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        sup = console.auth.login(token, request.headers.get("X-Supervisor-Name"))
        if sup is None:
            raise json_error(web.HTTPUnauthorized, "a valid supervisor token is required",
                             **{"WWW-Authenticate": "Bearer"})
        return sup

    async def body(request: web.Request) -> dict:
        try:
            b = await request.json()
        except ValueError:
            raise json_error(web.HTTPBadRequest, "the body must be JSON")
        if not isinstance(b, dict):
            raise json_error(web.HTTPBadRequest, "the body must be a JSON object")
        return b

    async def offer_sdp(request: web.Request) -> str:
        b = await body(request)
        sdp = b.get("sdp")
        if b.get("type") != "offer" or not isinstance(sdp, str) or not sdp or len(sdp) > MAX_SDP:
            raise json_error(web.HTTPBadRequest, 'expected {"type": "offer", "sdp": "..."}')
        return sdp

    def fail(e: ConsoleError) -> web.Response:
        return web.json_response({"error": e.message}, status=e.status)

    async def login(request: web.Request) -> web.Response:
        b = await body(request)
        sup = console.auth.login(str(b.get("token", "")), str(b.get("name", "")))
        if sup is None:
            raise json_error(web.HTTPUnauthorized, "unknown token")
        return web.json_response({"tenant": sup.tenant, "actor": sup.actor, "name": sup.name})

    async def calls(request: web.Request) -> web.Response:
        sup = who(request)
        return web.json_response({"tenant": sup.tenant, "calls": await console.live_calls(sup)})

    async def listen(request: web.Request) -> web.Response:
        sup = who(request)
        sdp = await offer_sdp(request)
        try:
            return web.json_response(await console.listen(sup, request.match_info["call_id"], sdp))
        except ConsoleError as e:
            return fail(e)

    async def stop_listen(request: web.Request) -> web.Response:
        sup = who(request)
        ok = await console.stop_listen(request.match_info["lid"], "stopped by supervisor", sup)
        return web.json_response({"stopped": ok}, status=200 if ok else 404)

    async def whisper(request: web.Request) -> web.Response:
        sup = who(request)
        b = await body(request)
        try:
            review = await console.whisper(sup, request.match_info["call_id"], str(b.get("text", "")))
        except ConsoleError as e:
            return fail(e)
        return web.json_response({"ok": True, "effect": review.effect})

    async def takeover(request: web.Request) -> web.Response:
        sup = who(request)
        sdp = await offer_sdp(request)
        try:
            return web.json_response(await console.take_over(sup, request.match_info["call_id"], sdp))
        except ConsoleError as e:
            return fail(e)

    async def handback(request: web.Request) -> web.Response:
        sup = who(request)
        try:
            await console.hand_back(sup, request.match_info["call_id"])
        except ConsoleError as e:
            return fail(e)
        return web.json_response({"ok": True})

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse(heartbeat=20.0, max_msg_size=64 * 1024)
        await sock.prepare(request)
        try:
            first = await sock.receive(timeout=AUTH_TIMEOUT)
            msg = json.loads(first.data) if first.type == WSMsgType.TEXT else {}
        except (asyncio.TimeoutError, ValueError):
            msg = {}
        sup = (console.auth.login(str(msg.get("token", "")), str(msg.get("name", "")))
               if msg.get("type") == "auth" else None)
        if sup is None:
            await sock.send_json({"type": "error", "error": "unauthorized"})
            await sock.close(code=4401, message=b"unauthorized")
            return sock
        await sock.send_json({"type": "hello", "tenant": sup.tenant, "actor": sup.actor})
        feed = ConsoleFeed(console, sup, sock)
        try:
            await feed.run()
        finally:
            await feed.close()
        return sock

    async def on_shutdown(app: web.Application) -> None:
        await console.close()

    app.router.add_get("/supervisor", page("supervisor.html"))
    app.router.add_post("/supervisor/api/login", login)
    app.router.add_get("/supervisor/api/calls", calls)
    app.router.add_post("/supervisor/api/calls/{call_id}/listen", listen)
    app.router.add_delete("/supervisor/api/listeners/{lid}", stop_listen)
    app.router.add_post("/supervisor/api/calls/{call_id}/whisper", whisper)
    app.router.add_post("/supervisor/api/calls/{call_id}/takeover", takeover)
    app.router.add_post("/supervisor/api/calls/{call_id}/handback", handback)
    app.router.add_get("/supervisor/ws", ws)
    app.on_shutdown.append(on_shutdown)


class ConsoleFeed:
    """One console WebSocket: pushes the tenant's live calls when they change, and the events of
    the call the supervisor is watching."""

    def __init__(self, console: SupervisorConsole, sup: Supervisor, sock: web.WebSocketResponse) -> None:
        self.console = console
        self.sup = sup
        self.sock = sock
        self.watched: tuple[str, Any, asyncio.Queue] | None = None
        self._events: asyncio.Task | None = None
        self._refresh: asyncio.Task | None = None
        self._poke = asyncio.Event()

    async def run(self) -> None:
        self._refresh = asyncio.ensure_future(self._calls_loop())
        async for msg in self.sock:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                m = json.loads(msg.data)
            except ValueError:
                continue
            if m.get("type") == "watch":
                await self.watch(str(m.get("call_id", "")))
            elif m.get("type") == "unwatch":
                self.unwatch()
            elif m.get("type") == "refresh":
                self._poke.set()

    async def _calls_loop(self) -> None:
        last = None
        while not self.sock.closed:
            try:
                calls = await self.console.live_calls(self.sup)
                if calls != last:  # `now` (ms) lets the page tick call ages on the server's clock
                    await self.sock.send_json({"type": "calls", "calls": calls, "now": int(time.time() * 1000)})
                    last = calls
            except (ConnectionError, RuntimeError):
                return
            except Exception:
                log.exception("supervisor: live call refresh failed")
            self._poke.clear()
            try:
                await asyncio.wait_for(self._poke.wait(), self.console.settings.calls_refresh)
            except asyncio.TimeoutError:
                pass

    async def watch(self, call_id: str) -> None:
        self.unwatch()
        try:
            session = await self.console.session_for(self.sup, call_id, "watch")
        except ConsoleError as e:
            await self.sock.send_json({"type": "watch_error", "call_id": call_id, "status": e.status,
                                       "error": e.message})
            return
        backlog = [e.to_dict() for e in list(getattr(session, "events", ()))[-300:]]
        q = session.subscribe()  # no await between the snapshot and this: nothing lost or doubled
        self.watched = (call_id, session, q)
        await self.sock.send_json({"type": "watching", "call_id": call_id, "backlog": backlog})
        self._events = asyncio.ensure_future(self._forward(call_id, q))

    async def _forward(self, call_id: str, q: asyncio.Queue) -> None:
        try:
            while not self.sock.closed:
                ev = await q.get()
                await self.sock.send_json({"type": "event", "call_id": call_id, "event": ev.to_dict()})
        except (asyncio.CancelledError, ConnectionError, RuntimeError):
            pass

    def unwatch(self) -> None:
        if self._events is not None:
            self._events.cancel()
            self._events = None
        if self.watched is not None:
            _, session, q = self.watched
            session.unsubscribe(q)
            self.watched = None

    async def close(self) -> None:
        self.unwatch()
        for t in (self._refresh,):
            if t is not None:
                t.cancel()
                try:
                    await t
                except asyncio.CancelledError:
                    pass
