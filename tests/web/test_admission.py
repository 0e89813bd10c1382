"""Admission on `POST /webrtc/offer` (aiortc peer as the browser, fake engine): beyond the process's
capacity, or while its event loop is late, an offer gets a JSON 503 with `error` and `retry_after`
before any peer connection is made; a call's end frees its slot."""
from __future__ import annotations

import asyncio

from aiohttp import ClientSession, web

from bot.engine.admission import AdmissionController, AdmissionSettings
from bot.routes import webrtc as webrtc_routes

from .fakes import FakeRuntime
from .peer import ClientPeer, Server


def app_with(controller: AdmissionController) -> web.Application:
    rt = FakeRuntime()
    rt.admission = controller
    app = web.Application()
    webrtc_routes.setup(app, rt)
    return app


async def post_offer(http: ClientSession, url: str) -> tuple[int, dict, dict]:
    peer = ClientPeer(send=False)
    try:
        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        async with http.post(url, json={"type": "offer", "sdp": peer.pc.localDescription.sdp}) as r:
            return r.status, await r.json(), dict(r.headers)
    finally:
        await peer.close()


async def until(cond, timeout: float = 10.0) -> None:
    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(wait(), timeout)


async def test_offer_beyond_capacity_gets_a_json_503_and_the_slot_comes_back():
    controller = AdmissionController(AdmissionSettings(max_calls=1, retry_after=9))
    app = app_with(controller)
    calls = app[webrtc_routes.CALLS_KEY]
    async with Server(app) as srv, ClientSession() as http:
        url = srv.url + "/webrtc/offer"
        peer = ClientPeer(send=True)
        try:
            answer = await peer.offer(http, url)
            await peer.changes.wait(lambda: any(m["type"] == "connected" for m in peer.messages), 10, "connected")
            status, body, headers = await post_offer(http, url)
            assert status == 503 and headers["Retry-After"] == "9"
            assert body["retry_after"] == 9 and body["reason"] == "capacity" and "capacity" in body["error"]
            assert len(calls.calls) == 1 and controller.refused[("webrtc", "capacity")] == 1
        finally:
            await peer.close()
        await until(lambda: answer["call_id"] not in calls.calls, 30)
        assert controller.live(asyncio.get_running_loop().time()) == 0
        late = ClientPeer(send=True)
        try:
            assert "sdp" in await late.offer(http, url)      # the slot is free again
            await late.changes.wait(lambda: any(m["type"] == "connected" for m in late.messages), 10, "connected")
        finally:
            await late.close()
        await until(lambda: not calls.calls, 30)


async def test_offer_while_the_loop_is_late_is_refused_below_the_cap():
    controller = AdmissionController(AdmissionSettings(max_calls=10, lag_bound=0.15, lag_min_samples=5))
    app = app_with(controller)
    now = asyncio.get_running_loop().time()
    assert controller.admit("sip-call", "sip", now).admitted  # a call the late loop is carrying
    for i in range(10):
        controller.record_lag(0.4, now - 1 + i * 0.1)
    async with Server(app) as srv, ClientSession() as http:
        status, body, _ = await post_offer(http, srv.url + "/webrtc/offer")
    assert status == 503 and body["reason"] == "loop_lag" and body["retry_after"] == 5 and body["error"]
    assert not app[webrtc_routes.CALLS_KEY].calls


async def test_max_peers_refusal_is_json_too():
    from dataclasses import replace
    controller = AdmissionController(AdmissionSettings(max_calls=10))
    rt = FakeRuntime()
    rt.admission = controller
    app = web.Application()
    webrtc_routes.setup(app, rt)
    registry = app[webrtc_routes.CALLS_KEY]
    registry.settings = replace(registry.settings, max_peers=1)
    async with Server(app) as srv, ClientSession() as http:
        registry.calls["webrtc-somebody"] = None        # one browser call already on this worker
        status, body, _ = await post_offer(http, srv.url + "/webrtc/offer")
        registry.calls.clear()
    assert status == 503 and body["reason"] == "max_peers" and body["retry_after"] == 5
    assert controller.live(asyncio.get_running_loop().time()) == 0
