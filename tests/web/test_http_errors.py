"""Plain HTTP against the browser-call and supervisor routes (fake engine): every error is JSON and
says what is wrong in the caller's terms; a browser call's tenant is explicit and validated."""
from __future__ import annotations

from types import SimpleNamespace

from aiohttp import ClientSession, web
from aiortc import RTCPeerConnection

from bot.routes import supervisor as supervisor_routes
from bot.routes import webrtc as webrtc_routes
from bot.supervisor import SupervisorSettings
from bot.transports.webrtc import WebRTCSettings

from .fakes import FakeRuntime
from .peer import Server

NO_AUDIO = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
            "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 "
            + ":".join(["AB"] * 32) + "\r\na=setup:actpass\r\na=sctp-port:5000\r\n")


async def audio_offer() -> dict:
    pc = RTCPeerConnection(WebRTCSettings().rtc_configuration())
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return {"type": "offer", "sdp": sdp}


def make(tokens=(("acme", "tokA-secret"), ("globex", "tokB-secret")), webrtc=WebRTCSettings()):
    rt = FakeRuntime(SimpleNamespace(supervisor=SupervisorSettings(tokens=tokens), webrtc=webrtc))
    app = web.Application()
    webrtc_routes.setup(app, rt)
    supervisor_routes.setup(app, rt)
    return rt, app


async def test_offer_errors_are_json_and_name_the_problem():
    _, app = make(tokens=(("acme", "tokA-secret"),))
    async with Server(app) as srv, ClientSession() as http:
        async with http.post(srv.url + "/webrtc/offer", json={"type": "offer", "sdp": NO_AUDIO}) as r:
            assert r.status == 400 and r.content_type == "application/json"
            assert await r.json() == {"error": "the offer has no audio m-line"}
        async with http.post(srv.url + "/webrtc/offer", data=b"nope") as r:
            assert r.status == 400 and "JSON" in (await r.json())["error"]
        async with http.post(srv.url + "/webrtc/offer", json={"type": "answer", "sdp": "x"}) as r:
            assert r.status == 400 and "offer" in (await r.json())["error"]
        assert not app[webrtc_routes.CALLS_KEY].calls


async def test_supervisor_errors_are_json():
    _, app = make()
    async with Server(app) as srv, ClientSession() as http:
        bad = {"Authorization": "Bearer wrong"}
        for method, path in (("GET", "/supervisor/api/calls"), ("POST", "/supervisor/api/calls/x/whisper"),
                             ("POST", "/supervisor/api/calls/x/listen"), ("POST", "/supervisor/api/calls/x/handback"),
                             ("DELETE", "/supervisor/api/listeners/x")):
            async with http.request(method, srv.url + path, headers=bad, json={}) as r:
                assert r.status == 401 and r.content_type == "application/json", (method, path)
                assert (await r.json()) == {"error": "a valid supervisor token is required"}
                assert r.headers["WWW-Authenticate"] == "Bearer"
        async with http.post(srv.url + "/supervisor/api/login", json={"token": "wrong"}) as r:
            assert r.status == 401 and (await r.json()) == {"error": "unknown token"}
        good = {"Authorization": "Bearer tokA-secret"}
        async with http.post(srv.url + "/supervisor/api/calls/x/whisper", headers=good, data=b"[") as r:
            assert r.status == 400 and (await r.json())["error"] == "the body must be JSON"
        async with http.post(srv.url + "/supervisor/api/calls/x/listen", headers=good, json={"type": "x"}) as r:
            assert r.status == 400 and "offer" in (await r.json())["error"]
        async with http.post(srv.url + "/supervisor/api/calls/nope/whisper", headers=good, json={"text": "hi"}) as r:
            assert r.status == 404 and (await r.json()) == {"error": "no such live call"}


async def test_browser_call_tenant_is_explicit_and_validated():
    # two tenants with tokens and none set: the page must name one
    rt, app = make()
    async with Server(app) as srv, ClientSession() as http:
        async with http.get(srv.url + "/webrtc/config") as r:
            cfg = await r.json()
            assert cfg["tenants"] == ["acme", "globex"] and cfg["tenant"] == ""
        offer = await audio_offer()
        async with http.post(srv.url + "/webrtc/offer", json={**offer, "tenant": "initech"}) as r:
            assert r.status == 400
            assert (await r.json())["error"] == "unknown tenant 'initech'; this bot serves acme, globex"
        async with http.post(srv.url + "/webrtc/offer", json=offer) as r:
            assert r.status == 400 and "?tenant=" in (await r.json())["error"]
        async with http.post(srv.url + "/webrtc/offer", json={**offer, "tenant": "globex"}) as r:
            assert r.status == 200 and (await r.json())["tenant"] == "globex"
        call = next(iter(app[webrtc_routes.CALLS_KEY].calls.values()))
        assert call.transport.info.tenant == "globex"
    # exactly one configured tenant: the default
    _, app = make(tokens=(("acme", "tokA-secret"),))
    async with Server(app) as srv, ClientSession() as http:
        async with http.get(srv.url + "/webrtc/config") as r:
            assert (await r.json())["tenant"] == "acme"


def test_tenant_choice():
    s = WebRTCSettings()
    assert s.choose_tenant("") == "default" and s.known_tenants() == ("default",)
    assert s.choose_tenant("", ["acme"]) == "acme"
    assert WebRTCSettings(tenant="globex").choose_tenant("", ["acme", "globex"]) == "globex"
    assert WebRTCSettings.from_env({"DUPLEXBOT_WEBRTC_TENANTS": "a, b"}).known_tenants(["acme"]) == ("acme", "a", "b")
