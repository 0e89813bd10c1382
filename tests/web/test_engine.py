"""The real engine (Runtime: VAD, Whisper, hibari, scripted agent, embedded Valkey) behind
/webrtc/offer and the supervisor API, with Python aiortc peers: a spoken question gets its spoken
answer, a whisper changes the next answer, take-over silences the bot and hand-back restores it."""
from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import ClientSession

from .peer import ClientPeer, Server
from .voices import say

pytestmark = pytest.mark.slow

TOKENS = "acme:tokA-secret,globex:tokB-secret"
A = {"Authorization": "Bearer tokA-secret", "X-Supervisor-Name": "alice"}
B = {"Authorization": "Bearer tokB-secret", "X-Supervisor-Name": "bob"}


async def start_runtime(monkeypatch):
    monkeypatch.setenv("DUPLEXBOT_SUPERVISOR_TOKENS", TOKENS)
    monkeypatch.setenv("DUPLEXBOT_WEBRTC_TENANT", "acme")
    from bot.runtime import Runtime
    from bot.server import build_app
    from bot.settings import Settings

    rt = await Runtime.start(Settings.for_tests())
    return rt, build_app(rt)


async def close_runtime(rt) -> None:
    try:
        await asyncio.wait_for(rt.close(), 15)
    except asyncio.TimeoutError:
        pass


def bot_texts(peer: ClientPeer) -> list[str]:
    return [e["text"] for e in peer.events("bot_speech_start")]


async def test_real_engine_call_and_supervisor(monkeypatch):
    rt, app = await start_runtime(monkeypatch)
    try:
        async with Server(app) as srv, ClientSession() as http:
            caller = ClientPeer()
            listener = ClientPeer(send=False, channel=False)
            try:
                cid = (await caller.offer(http, srv.url + "/webrtc/offer"))["call_id"]
                # the greeting, then our question once it is over
                await caller.changes.wait(lambda: caller.events("bot_speech_stop"), 20, "the greeting to end")
                assert caller.loud_frames > 20
                caller.mic.play(say("What are your opening hours?"))
                await caller.changes.wait(lambda: any("nine" in t for t in bot_texts(caller)), 30, "the hours answer")
                heard = [e["text"] for e in caller.events("transcript_final") if e["speaker"] == "caller"]
                assert any("hours" in h.lower() for h in heard), heard

                async with http.get(srv.url + "/supervisor/api/calls", headers=A) as r:
                    assert [c["call_id"] for c in (await r.json())["calls"]] == [cid]
                await listener.offer(http, f"{srv.url}/supervisor/api/calls/{cid}/listen", headers=A)
                await caller.changes.wait(lambda: caller.events("bot_speech_stop") and
                                          len(caller.events("bot_speech_stop")) >= 2, 20, "the answer to end")
                async with http.post(f"{srv.url}/supervisor/api/calls/{cid}/whisper",
                                     json={"text": "We are closed today for a holiday."}, headers=A) as r:
                    assert r.status == 200
                caller.mic.play(say("And what about tomorrow?"))
                await caller.changes.wait(lambda: any("holiday" in t for t in bot_texts(caller)), 30,
                                          "the whispered answer")
                await listener.changes.wait(lambda: listener.loud_frames > 10, 10, "audio for the listener")

                sup = ClientPeer(say("Hello, this is Alice from the store."), channel=False)
                await sup.offer(http, f"{srv.url}/supervisor/api/calls/{cid}/takeover", headers=A)
                session = rt.calls.get(cid)
                await caller.changes.wait(lambda: session.taken_over_by == "alice@acme", 5, "take-over")
                async with http.post(f"{srv.url}/supervisor/api/calls/{cid}/handback", headers=A) as r:
                    assert r.status == 200
                assert session.taken_over_by is None
                await sup.close()
                caller.channel.send(json.dumps({"type": "hangup"}))
                await caller.changes.wait(lambda: any(m["type"] == "ended" for m in caller.messages)
                                          or rt.calls.get(cid) is None, 10, "the call to end")
            finally:
                await listener.close()
                await caller.close()
    finally:
        await close_runtime(rt)


async def test_real_engine_connect_close_cycles_leak_nothing(monkeypatch):
    import gc

    from aiortc import RTCPeerConnection

    from bot.routes.webrtc import CALLS_KEY

    rt, app = await start_runtime(monkeypatch)
    try:
        async with Server(app) as srv, ClientSession() as http:
            registry = app[CALLS_KEY]
            async with http.get(srv.url + "/webrtc/config") as r:  # the keep-alive connection's task
                assert r.status == 200
            baseline = set(asyncio.all_tasks())
            for i in range(20):
                peer = ClientPeer()
                await peer.offer(http, srv.url + "/webrtc/offer")
                await peer.changes.wait(lambda: peer.events("call_started"), 10, "the call to start")
                if i % 2:
                    peer.channel.send(json.dumps({"type": "hangup"}))
                await peer.close()
                await peer.changes.wait(lambda: not registry.calls and not rt.calls.live(), 20, "the call to end")

            def leftovers():
                return [t for t in asyncio.all_tasks() - baseline if t is not asyncio.current_task() and not t.done()]
            await peer.changes.wait(lambda: not leftovers(), 10, "tasks to finish")
            gc.collect()
            live = [o for o in gc.get_objects() if isinstance(o, RTCPeerConnection) and o.connectionState != "closed"]
            assert live == []
            assert registry.started == 20
    finally:
        await close_runtime(rt)
