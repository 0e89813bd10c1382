"""WebRTC transport and /webrtc/offer, with a Python aiortc peer as the browser and the fake engine."""
from __future__ import annotations

import asyncio
import gc
import json

import av
import numpy as np
import pytest
from aiohttp import ClientSession, web
from aiortc import RTCPeerConnection

from bot.routes import webrtc as webrtc_routes
from bot.transports.webrtc import WebRTCSettings, av_frame_to_mono, mono_to_av_frame, negotiated_audio_rate

from .fakes import FakeRuntime
from .peer import ClientPeer, Server, speech_like


def make_app(runtime) -> web.Application:
    app = web.Application()
    webrtc_routes.setup(app, runtime)
    return app


def registry(app):
    return app[webrtc_routes.CALLS_KEY]


def test_settings_from_env_and_no_default_stun():
    s = WebRTCSettings.from_env({})
    assert s.ice_servers == () and s.rtc_configuration().iceServers == []
    s = WebRTCSettings.from_env({"DUPLEXBOT_WEBRTC_ICE_SERVERS": "stun:stun.example.org:3478, turn:t.example.org",
                                 "DUPLEXBOT_WEBRTC_TURN_USERNAME": "u", "DUPLEXBOT_WEBRTC_TURN_CREDENTIAL": "p",
                                 "DUPLEXBOT_WEBRTC_CODECS": "PCMU"})
    cfg = s.rtc_configuration()
    assert [x.urls for x in cfg.iceServers] == ["stun:stun.example.org:3478", "turn:t.example.org"]
    assert cfg.iceServers[1].username == "u" and s.codecs == ("PCMU",)
    assert s.browser_ice_servers()[1] == {"urls": "turn:t.example.org", "username": "u", "credential": "p"}
    with pytest.raises(ValueError):
        WebRTCSettings(ice_servers=("http://x",))
    with pytest.raises(ValueError):
        WebRTCSettings(codecs=("G722",))


def test_frame_conversion():
    pcm = (np.arange(960) - 480).astype(np.int16)
    f = mono_to_av_frame(pcm, 48000, 0)
    assert np.array_equal(av_frame_to_mono(f), pcm)
    stereo = av.AudioFrame.from_ndarray(np.repeat(pcm, 2).reshape(1, -1), format="s16", layout="stereo")
    assert np.array_equal(av_frame_to_mono(stereo), pcm)
    planar = av.AudioFrame.from_ndarray(np.stack([pcm, pcm]), format="s16p", layout="stereo")
    assert np.array_equal(av_frame_to_mono(planar), pcm)


@pytest.mark.parametrize("codec,rate", [("opus", 48000), ("PCMU", 8000)])
async def test_browser_call_hears_the_bot(codec, rate):
    rt = FakeRuntime()
    app = make_app(rt)
    async with Server(app) as srv, ClientSession() as http:
        peer = ClientPeer(speech_like(), codec=codec)
        try:
            answer = await peer.offer(http, srv.url + "/webrtc/offer")
            sdp = answer["sdp"]
            assert "typ host" in sdp and "typ srflx" not in sdp and "typ relay" not in sdp
            assert negotiated_audio_rate(sdp) == rate
            assert f"{'opus/48000' if codec == 'opus' else 'PCMU/8000'}" in sdp
            await peer.changes.wait(lambda: peer.events("bot_speech_start"), 15, "the bot's answer event")
            await peer.changes.wait(lambda: peer.loud_frames >= 10, 10, "the bot's audio")
            assert peer.rx_rate == rate
            kinds = [e["type"] for e in peer.events()]
            assert kinds[0] == "call_started" and "end_of_turn" in kinds and "transcript_final" in kinds
            call = registry(app).calls[answer["call_id"]]
            assert call.transport.stats.frames_in > 50 and call.transport.bot_track.resyncs == 0
            peer.channel.send(json.dumps({"type": "dtmf", "digit": "5"}))
            peer.channel.send(json.dumps({"type": "dtmf", "digit": "not a digit"}))
            await peer.changes.wait(lambda: call.transport.stats.dtmf == 1, 5, "the DTMF digit")
            peer.channel.send(json.dumps({"type": "hangup"}))
            await peer.changes.wait(lambda: any(m["type"] == "ended" for m in peer.messages), 10, "the call to end")
            assert peer.events()[-1]["type"] == "call_ended"
        finally:
            await peer.close()
        await asyncio.wait_for(_until(lambda: not registry(app).calls), 10)
        assert rt.calls.finished and rt.calls.finished[0].info.transport == "webrtc"


async def _until(cond) -> None:
    while not cond():
        await asyncio.sleep(0.02)


async def test_bad_offers_are_rejected():
    app = make_app(FakeRuntime())
    async with Server(app) as srv, ClientSession() as http:
        async with http.post(srv.url + "/webrtc/offer", data=b"nope") as r:
            assert r.status == 400
        async with http.post(srv.url + "/webrtc/offer", json={"type": "offer", "sdp": "v=0\r\nbogus\r\n"}) as r:
            assert r.status == 400
        async with http.get(srv.url + "/webrtc/config") as r:
            assert (await r.json()) == {"iceServers": [], "codecs": ["opus", "PCMU"], "tenants": ["default"],
                                        "tenant": "default"}
        assert not registry(app).calls


async def test_connect_close_cycles_leave_nothing_behind():
    rt = FakeRuntime()
    app = make_app(rt)
    async with Server(app) as srv, ClientSession() as http:
        async with http.get(srv.url + "/webrtc/config") as r:  # the keep-alive connection's handler task
            assert r.status == 200
        baseline = {t for t in asyncio.all_tasks()}
        for i in range(20):
            peer = ClientPeer(send=True)
            await peer.offer(http, srv.url + "/webrtc/offer")
            await peer.changes.wait(lambda: any(m["type"] == "connected" for m in peer.messages), 10, "connected")
            if i % 2:
                peer.channel.send(json.dumps({"type": "hangup"}))
            await peer.close()
            await asyncio.wait_for(_until(lambda: not registry(app).calls and not rt.calls.sessions), 40)
        assert registry(app).started == 20 and len(rt.calls.finished) == 20

        def leftovers():
            return [t for t in asyncio.all_tasks() - baseline if t is not asyncio.current_task() and not t.done()]
        try:
            await asyncio.wait_for(_until(lambda: not leftovers()), 10)
        except asyncio.TimeoutError:
            raise AssertionError(f"leaked tasks: {leftovers()}")
        gc.collect()
        pcs = [o for o in gc.get_objects() if isinstance(o, RTCPeerConnection) and o.connectionState != "closed"]
        assert pcs == []
