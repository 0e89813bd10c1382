"""The supervisor console's HTTP edge.

    GET    /supervisor                              the console page
    POST   /supervisor/api/login                    {token, name} -> {tenant, actor}
    GET    /supervisor/api/calls                    this tenant's live calls (every worker)
    POST   /supervisor/api/calls/{id}/listen        SDP offer (recvonly) -> answer + listener_id
    DELETE /supervisor/api/listeners/{lid}          stop listening
    POST   /supervisor/api/calls/{id}/whisper       {text}
    POST   /supervisor/api/calls/{id}/takeover      SDP offer (the supervisor's microphone) -> answer
    POST   /supervisor/api/calls/{id}/handback
    POST   /supervisor/api/calls/{id}/mute          {on: bool}: the bot silent (it still listens)
    POST   /supervisor/api/calls/{id}/hold          {on: bool}: hold notice, then silence; resume
    POST   /supervisor/api/calls/{id}/transfer      {target}: the transport's transfer (SIP, Twilio)
    GET    /supervisor/api/calls/{id}/levels        both channels' levels so far (10 Hz)
    GET    /supervisor/api/calls/{id}/network       jitter, loss, round trip
    GET    /supervisor/api/policy                   the tenant's interruption_sensitivity, end_of_turn
    PUT    /supervisor/api/policy                   {interruption_sensitivity?, end_of_turn?, call_id?}
    GET    /supervisor/api/history                  this tenant's ended calls (newest first)
    GET    /supervisor/api/history/{id}             one stored call: audit trail, events, transcript
    GET    /supervisor/api/history/{id}/export      the same as a JSON download
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
from typing import Any, Awaitable, Callable

from aiohttp import WSMsgType, web

from ..engine.events import Event
from ..supervisor import ConsoleError, Supervisor, SupervisorConsole
from ..supervisor.controls import ControlError
from ..supervisor.history import CallHistory, HistoryError
from ..supervisor.levels import CallLevels, LevelBoard, LevelSample, board_for
from ..supervisor.network import network_quality
from ..web import page, setup_static
from .web_runtime import WebRuntime

log = logging.getLogger(__name__)

CONSOLE_KEY = web.AppKey("duplexbot_supervisor_console", SupervisorConsole)
MAX_SDP = 64 * 1024
AUTH_TIMEOUT = 10.0
MAX_ID = 4096  # a call id in a path: SIP Call-IDs are long, but not this long
NETWORK_EVERY = 2.0  # seconds between network figures pushed to a watching console


def json_error(cls: type[web.HTTPException], message: str, **headers: str) -> web.HTTPException:
    """An HTTP error whose body is `{"error": message}` like every other answer of the API."""
    return cls(text=json.dumps({"error": message}), content_type="application/json", headers=headers or None)


def setup(app: web.Application, runtime: WebRuntime) -> None:
    console = SupervisorConsole(runtime, runtime.settings.supervisor, runtime.settings.webrtc)
    app[CONSOLE_KEY] = console
    setup_static(app)
    board = board_for(app, runtime.calls)
    store = runtime.state
    from ..state.store import CallStore

    history = CallHistory(store if isinstance(store, CallStore) else None)

    def who(request: web.Request) -> Supervisor:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        sup = console.auth.login(token, request.headers.get("X-Supervisor-Name"))
        if sup is None:
            raise json_error(web.HTTPUnauthorized, "a valid supervisor token is required",
                             **{"WWW-Authenticate": "Bearer"})
        return sup

    async def body(request: web.Request) -> dict[str, Any]:
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

    def call_id(request: web.Request) -> str:
        cid = request.match_info["call_id"]
        if not cid or len(cid) > MAX_ID:
            raise json_error(web.HTTPBadRequest, f"a call id is 1 to {MAX_ID} characters")
        return cid

    async def answer(work: Callable[[], Awaitable[dict[str, Any]]]) -> web.Response:
        try:
            return web.json_response(await work())
        except (ConsoleError, ControlError, HistoryError) as e:
            return web.json_response({"error": e.message}, status=e.status)

    def flag(b: dict[str, Any]) -> bool:
        on = b.get("on", True)
        if not isinstance(on, bool):
            raise json_error(web.HTTPBadRequest, '"on" must be true or false')
        return on

    async def mute(request: web.Request) -> web.Response:
        sup, cid = who(request), call_id(request)
        on = flag(await body(request))
        return await answer(lambda: console.controls.mute(sup, cid, on))

    async def hold(request: web.Request) -> web.Response:
        sup, cid = who(request), call_id(request)
        on = flag(await body(request))
        return await answer(lambda: console.controls.hold(sup, cid, on))

    async def transfer(request: web.Request) -> web.Response:
        sup, cid = who(request), call_id(request)
        target = (await body(request)).get("target")
        if not isinstance(target, str):
            raise json_error(web.HTTPBadRequest, 'expected {"target": "sip:... or +1..."}')
        return await answer(lambda: console.controls.transfer(sup, cid, target))

    async def levels(request: web.Request) -> web.Response:
        sup, cid = who(request), call_id(request)

        async def work() -> dict[str, Any]:
            session = await console.session_for(sup, cid, "levels")
            return board.attach(session).series()
        return await answer(work)

    async def network(request: web.Request) -> web.Response:
        sup, cid = who(request), call_id(request)

        async def work() -> dict[str, Any]:
            session = await console.session_for(sup, cid, "network")
            return await network_quality(session.transport)
        return await answer(work)

    async def get_policy(request: web.Request) -> web.Response:
        sup = who(request)
        return await answer(lambda: console.controls.policy(sup))

    async def put_policy(request: web.Request) -> web.Response:
        sup = who(request)
        b = await body(request)
        return await answer(lambda: console.controls.set_policy(sup, b))

    async def ended(request: web.Request) -> web.Response:
        sup = who(request)
        raw = request.query.get("limit", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= 200:
            raise json_error(web.HTTPBadRequest, "limit is a number from 1 to 200")

        async def work() -> dict[str, Any]:
            return {"tenant": sup.tenant, "calls": await history.ended_calls(sup.tenant, int(raw))}
        return await answer(work)

    async def stored(sup: Supervisor, cid: str) -> dict[str, Any]:
        try:
            got = await history.call(sup.tenant, cid)
        except HistoryError as e:
            if e.status == 403:
                console.stats.denied += 1
                console.audit(sup, "denied", cid, "history: call belongs to another tenant")
            raise
        lv = board.get(got["call"]["call_id"])
        got["levels"] = lv.series() if lv is not None and lv.tenant == sup.tenant else None
        return got

    async def history_call(request: web.Request) -> web.Response:
        sup, cid = who(request), call_id(request)
        return await answer(lambda: stored(sup, cid))

    async def export(request: web.Request) -> web.Response:
        sup, cid = who(request), call_id(request)
        resp = await answer(lambda: stored(sup, cid))
        if resp.status == 200:
            console.audit(sup, "export", cid)
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cid)[:80]
            resp.headers["Content-Disposition"] = f'attachment; filename="call-{safe}.json"'
        return resp

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
        feed = ConsoleFeed(console, sup, sock, board)
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
    app.router.add_post("/supervisor/api/calls/{call_id}/mute", mute)
    app.router.add_post("/supervisor/api/calls/{call_id}/hold", hold)
    app.router.add_post("/supervisor/api/calls/{call_id}/transfer", transfer)
    app.router.add_get("/supervisor/api/calls/{call_id}/levels", levels)
    app.router.add_get("/supervisor/api/calls/{call_id}/network", network)
    app.router.add_get("/supervisor/api/policy", get_policy)
    app.router.add_put("/supervisor/api/policy", put_policy)
    app.router.add_get("/supervisor/api/history", ended)
    app.router.add_get("/supervisor/api/history/{call_id}", history_call)
    app.router.add_get("/supervisor/api/history/{call_id}/export", export)
    app.router.add_get("/supervisor/ws", ws)
    app.on_shutdown.append(on_shutdown)
    if json_errors not in app.middlewares:
        app.middlewares.append(json_errors)


@web.middleware
async def json_errors(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Under /supervisor/api/ every answer is JSON, aiohttp's own 404 and 405 included (an id with
    a '/' in it matches no route)."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if not request.path.startswith("/supervisor/api/") or e.content_type == "application/json":
            raise
        text = {404: "no such API path (an id with '/' must be percent-encoded twice)",
                405: f"{request.method} is not allowed here"}.get(e.status, e.reason)
        return web.json_response({"error": text}, status=e.status, headers={k: v for k, v in e.headers.items()
                                                                            if k in ("Allow", "WWW-Authenticate")})


class ConsoleFeed:
    """One console WebSocket: pushes the tenant's live calls when they change, and for the call the
    supervisor is watching its events, both channels' levels (10 Hz, never stored) and its network
    figures (every 2 s)."""

    def __init__(self, console: SupervisorConsole, sup: Supervisor, sock: web.WebSocketResponse,
                 board: LevelBoard) -> None:
        self.console = console
        self.sup = sup
        self.sock = sock
        self.board = board
        self.watched: tuple[str, Any, asyncio.Queue[Event]] | None = None
        self._levels: tuple[CallLevels, asyncio.Queue[LevelSample]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._refresh: asyncio.Task[None] | None = None
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
            if not isinstance(m, dict):
                continue
            if m.get("type") == "watch":
                await self.watch(str(m.get("call_id", ""))[:MAX_ID])
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
        levels = self.board.attach(session)
        lq = levels.subscribe()
        self.watched = (call_id, session, q)
        self._levels = (levels, lq)
        await self.sock.send_json({"type": "watching", "call_id": call_id, "backlog": backlog,
                                   "levels": levels.series(), "controls": self.console.controls.state(call_id)})
        self._tasks = [asyncio.ensure_future(self._forward(call_id, q)),
                       asyncio.ensure_future(self._forward_levels(call_id, lq)),
                       asyncio.ensure_future(self._network(call_id, session))]

    async def _forward(self, call_id: str, q: asyncio.Queue[Event]) -> None:
        try:
            while not self.sock.closed:
                ev = await q.get()
                await self.sock.send_json({"type": "event", "call_id": call_id, "event": ev.to_dict()})
        except (asyncio.CancelledError, ConnectionError, RuntimeError):
            pass

    async def _forward_levels(self, call_id: str, q: asyncio.Queue[LevelSample]) -> None:
        try:
            while not self.sock.closed:
                s = await q.get()
                await self.sock.send_json({"type": "levels", "call_id": call_id, **s.to_dict()})
        except (asyncio.CancelledError, ConnectionError, RuntimeError):
            pass

    async def _network(self, call_id: str, session: Any) -> None:
        try:
            while not self.sock.closed:
                await asyncio.sleep(NETWORK_EVERY)
                try:
                    q = await network_quality(session.transport)
                except Exception:  # a closing peer connection: try again next time
                    log.debug("supervisor: network figures of %s failed", call_id, exc_info=True)
                    continue
                await self.sock.send_json({"type": "network", "call_id": call_id, "network": q,
                                           "controls": self.console.controls.state(call_id)})
        except (asyncio.CancelledError, ConnectionError, RuntimeError):
            pass

    def unwatch(self) -> None:
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        if self.watched is not None:
            _, session, q = self.watched
            session.unsubscribe(q)
            self.watched = None
        if self._levels is not None:
            levels, lq = self._levels
            levels.unsubscribe(lq)
            self._levels = None

    async def close(self) -> None:
        self.unwatch()
        for t in (self._refresh,):
            if t is not None:
                t.cancel()
                try:
                    await t
                except asyncio.CancelledError:
                    pass
