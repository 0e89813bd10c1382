"""Supervisor console API with aiortc peers and the fake engine: tenancy, listen, whisper,
take-over, hand-back, audit."""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import numpy as np
import pytest
from aiohttp import ClientSession, web

from bot.audio import AudioFrame
from bot.routes import supervisor as supervisor_routes
from bot.routes import webrtc as webrtc_routes
from bot.supervisor import Authenticator, ListenFeed, SupervisorSettings
from bot.transports.webrtc import WebRTCSettings

from .fakes import FakeRuntime
from .peer import ClientPeer, HTTPFailure, Server, speech_like

A = {"Authorization": "Bearer tokA-secret", "X-Supervisor-Name": "alice"}
B = {"Authorization": "Bearer tokB-secret", "X-Supervisor-Name": "bob"}


def make(tenant="acme"):
    settings = SimpleNamespace(
        supervisor=SupervisorSettings(tokens=(("acme", "tokA-secret"), ("globex", "tokB-secret"))),
        webrtc=WebRTCSettings(tenant=tenant))
    rt = FakeRuntime(settings)
    app = web.Application()
    webrtc_routes.setup(app, rt)
    supervisor_routes.setup(app, rt)
    return rt, app


def test_tokens_parse_and_constant_time_lookup():
    assert SupervisorSettings.parse_tokens(" a:tok1 , b:tok2,") == (("a", "tok1"), ("b", "tok2"))
    with pytest.raises(ValueError):
        SupervisorSettings.parse_tokens("a-without-token")
    with pytest.raises(ValueError):
        SupervisorSettings(tokens=(("a", "x"),))
    auth = Authenticator(SupervisorSettings(tokens=(("a", "tok1"), ("b", "tok2"))))
    assert auth.tenant_for("tok2") == "b" and auth.tenant_for("tok") is None and auth.tenant_for(None) is None
    assert auth.login("tok1", "<Al ice>").actor == "Al ice@a"
    assert not Authenticator(SupervisorSettings()).enabled


def test_listen_feed_is_bounded_and_mixes():
    feed = ListenFeed(max_seconds=0.1)
    one = AudioFrame(np.full(320, 1000, np.int16), 16000)
    two = AudioFrame(np.full(320, 30000, np.int16), 16000)
    for _ in range(50):  # a listener that never reads: 1 s of audio offered, 0.1 s kept
        feed(one, two)
    assert feed.held_seconds <= 0.1 and feed.dropped_samples >= 16000 - 1600
    out = feed.pull(320)
    assert out.max() == 31000  # mixed, and clipped only at int16 limits
    empty = ListenFeed()
    assert not empty.pull(320).any() and empty.underruns == 0


async def _until(cond, timeout=10.0, what="condition"):
    async def loop():
        while not cond():
            await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(loop(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out waiting for {what}")


async def test_supervisor_listen_whisper_takeover_and_tenancy():
    rt, app = make()
    async with Server(app) as srv, ClientSession() as http:
        caller = ClientPeer(speech_like(tail=1.0))
        listeners: list[ClientPeer] = []
        try:
            answer = await caller.offer(http, srv.url + "/webrtc/offer")
            cid = answer["call_id"]
            await caller.changes.wait(lambda: caller.events("bot_speech_start"), 15, "first answer")

            # the call list, per tenant
            async with http.get(srv.url + "/supervisor/api/calls", headers=A) as r:
                calls = (await r.json())["calls"]
            assert [c["call_id"] for c in calls] == [cid] and calls[0]["local"] is True
            async with http.get(srv.url + "/supervisor/api/calls", headers=B) as r:
                assert (await r.json())["calls"] == []
            async with http.get(srv.url + "/supervisor/api/calls") as r:
                assert r.status == 401

            # the console WebSocket: call list and the watched call's events
            async with http.ws_connect(srv.url + "/supervisor/ws") as ws:
                await ws.send_json({"type": "auth", "token": "tokA-secret", "name": "alice"})
                hello = await ws.receive_json(timeout=5)
                assert hello == {"type": "hello", "tenant": "acme", "actor": "alice@acme"}
                msg = await ws.receive_json(timeout=5)
                assert msg["type"] == "calls" and msg["calls"][0]["call_id"] == cid
                await ws.send_json({"type": "watch", "call_id": cid})
                assert (await ws.receive_json(timeout=5))["type"] == "watching"

                # two listeners on one call hear it
                for _ in range(2):
                    peer = ClientPeer(send=False, channel=False)
                    listeners.append(peer)
                    ans = await peer.offer(http, f"{srv.url}/supervisor/api/calls/{cid}/listen", headers=A)
                    peer.listener_id = ans["listener_id"]
                caller.mic.play(speech_like(tail=1.0))
                for peer in listeners:
                    await peer.changes.wait(lambda: peer.loud_frames >= 5, 10, "listen audio")

                # another tenant: 403 and audited
                other = ClientPeer(send=False, channel=False)
                with pytest.raises(HTTPFailure) as e:
                    await other.offer(http, f"{srv.url}/supervisor/api/calls/{cid}/listen", headers=B)
                assert e.value.status == 403
                await other.close()
                async with http.post(f"{srv.url}/supervisor/api/calls/{cid}/whisper", json={"text": "x"},
                                     headers=B) as r:
                    assert r.status == 403

                # whisper changes the next answer
                n_answers = len(caller.events("bot_speech_start"))
                async with http.post(f"{srv.url}/supervisor/api/calls/{cid}/whisper",
                                     json={"text": "offer ten percent off"}, headers=A) as r:
                    assert r.status == 200
                caller.mic.play(speech_like(tail=1.0))
                await caller.changes.wait(lambda: len(caller.events("bot_speech_start")) > n_answers, 10,
                                          "the whispered answer")
                assert "ten percent" in caller.events("bot_speech_start")[-1]["text"]
                seen = []
                while not any(e["event"]["type"] == "bot_speech_start" and "ten percent" in e["event"]["text"]
                              for e in seen):
                    m = await ws.receive_json(timeout=5)
                    if m["type"] == "event":
                        seen.append(m)

            # a listener whose connection never comes up: its feed stays bounded, the call goes on
            stalled = ClientPeer(send=False, channel=False)
            await stalled.pc.setLocalDescription(await stalled.pc.createOffer())
            async with http.post(f"{srv.url}/supervisor/api/calls/{cid}/listen", headers=A,
                                 json={"type": "offer", "sdp": stalled.pc.localDescription.sdp}) as r:
                stalled_id = (await r.json())["listener_id"]  # the answer is never applied
            console = app[supervisor_routes.CONSOLE_KEY]
            feed = console.listeners[stalled_id].feed
            n_answers = len(caller.events("bot_speech_start"))
            caller.mic.play(speech_like(tail=1.0))
            await caller.changes.wait(lambda: len(caller.events("bot_speech_start")) > n_answers, 10,
                                      "an answer while a listener is stalled")
            await _until(lambda: feed.dropped_samples > 0, 10, "the stalled feed to drop")
            assert feed.held_seconds <= 0.2
            await stalled.close()

            # take over with a microphone, then hand back
            session = rt.calls.get(cid)
            sup_mic = ClientPeer(speech_like(seconds=1.0, tail=0.5), channel=False)
            await sup_mic.offer(http, f"{srv.url}/supervisor/api/calls/{cid}/takeover", headers=A)
            await _until(lambda: session.takeover is not None and session.takeover.peak > 2000, 10, "takeover audio")
            assert session.source.silenced
            async with http.post(f"{srv.url}/supervisor/api/calls/{cid}/handback", headers=B) as r:
                assert r.status == 403
            async with http.post(f"{srv.url}/supervisor/api/calls/{cid}/handback", headers=A) as r:
                assert r.status == 200
            assert session.hand_backs == 1 and not session.source.silenced
            await sup_mic.close()

            async with http.delete(f"{srv.url}/supervisor/api/listeners/{listeners[0].listener_id}", headers=B) as r:
                assert r.status == 404
            async with http.delete(f"{srv.url}/supervisor/api/listeners/{listeners[0].listener_id}", headers=A) as r:
                assert r.status == 200
            caller.channel.send(json.dumps({"type": "hangup"}))
            await _until(lambda: not console.listeners and not rt.calls.sessions, 10, "the call to end")
        finally:
            for p in listeners:
                await p.close()
            await caller.close()
    actions = [(a["tenant"], a["action"]) for a in rt.state.audits]
    assert ("globex", "denied") in actions
    for act in ("listen_start", "listen_stop", "whisper", "takeover_start", "takeover_stop"):
        assert ("acme", act) in actions, act
    assert sum(1 for a in actions if a == ("acme", "listen_stop")) == 3  # one by DELETE, two at call end
    assert all(a["actor"] in ("alice@acme", "bob@globex") for a in rt.state.audits)
