"""The media WebSocket and the voice webhook over real sockets on 127.0.0.1, with a fake engine.

A `TwilioPeer` speaks Twilio's side byte for byte (frames built by `codec`, checked against the
documented fixtures in test_codec.py)."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import numpy as np
from prometheus_client import REGISTRY

from bot.bench.twilio_peer import TwilioPeer
from bot.engine.port import Dtmf, Hangup
from bot.transports.twilio.signature import sign_request

from .conftest import ACCOUNT, AUTH

PUBLIC = "https://bot.example.com"


def peer_for(server, **kw) -> TwilioPeer:
    return TwilioPeer(server.base, AUTH, PUBLIC, account_sid=ACCOUNT, **kw)


def ws_url(server) -> str:
    return server.base.replace("http://", "ws://") + "/twilio/media"


async def connect(server, http, **kw) -> TwilioPeer:
    p = peer_for(server, **kw)
    r = await p.webhook(http)
    assert r.status == 200, p.twiml
    assert p.stream_url == "wss://bot.example.com/twilio/media"
    await p.open(http, ws_url(server))
    return p


async def wait_engine(server, cid: str, cond, timeout=5.0) -> bool:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if cid in server.engine.items and cond(server.engine.items[cid]):
            return True
        await asyncio.sleep(0.01)
    return False


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---------------------------------------------------------------- webhook over HTTP

async def test_webhook_signature_good_bad_missing(server, http):
    p = peer_for(server)
    r = await p.webhook(http)
    assert r.status == 200 and r.content_type == "text/xml"
    assert "<Connect><Stream url=\"wss://bot.example.com/twilio/media\">" in p.twiml
    assert set(p.parameters) == {"token", "caller", "callee"}
    for sig in (None, "AAAA", sign_request("wrong-token", PUBLIC + "/twilio/voice", {"CallSid": p.call_sid})):
        r = await peer_for(server).webhook(http, signature=sig)
        assert r.status == 403
    # a signature over the address we listen on (what the Host header says) is refused
    q = TwilioPeer(server.base, AUTH, server.base, account_sid=ACCOUNT)
    r = await q.webhook(http)
    assert r.status == 403 and "Stream" not in q.twiml


async def test_webhook_signature_covers_the_raw_query_string(server, http):
    params = {"CallSid": "CA" + "9" * 32, "AccountSid": ACCOUNT, "From": "+15550001111", "To": "+15550002222"}
    path = "/twilio/voice?tenant=acme%20corp&lang=en"
    sig = sign_request(AUTH, PUBLIC + path, params)
    r = await http.post(server.base + path, data=params, headers={"X-Twilio-Signature": sig})
    assert r.status == 200
    decoded = sign_request(AUTH, PUBLIC + "/twilio/voice?tenant=acme corp&lang=en", params)
    r = await http.post(server.base + path, data=params, headers={"X-Twilio-Signature": decoded})
    assert r.status == 403


# ---------------------------------------------------------------- media stream

async def test_caller_audio_dtmf_and_stop(server, http):
    p = await connect(server, http)
    cid = p.call_sid
    tone = (8000 * np.sin(2 * np.pi * 300 * np.arange(8000) / 8000)).astype(np.int16)
    u = p.say(tone)
    await asyncio.wait_for(u.done.wait(), 5)
    await p.dtmf("7")
    assert await wait_engine(server, cid, lambda items: any(isinstance(i, Dtmf) for i in items))
    frames = server.engine.frames(cid)
    assert all(f.sample_rate == 8000 and f.samples == 160 for f in frames)
    pcm = np.concatenate([f.pcm for f in frames])
    assert np.abs(pcm).max() > 6000  # the tone arrived (mu-law decoded)
    assert [i.digit for i in server.engine.items[cid] if isinstance(i, Dtmf)] == ["7"]
    info = server.engine.transports[cid].info
    assert (info.call_id, info.transport, info.caller, info.callee) == (cid, "twilio", p.caller, p.callee)
    assert info.extra["stream_sid"] == p.stream_sid
    await p.hang_up()
    await asyncio.wait_for(server.engine.ended[cid].wait(), 5)
    assert server.engine.items[cid][-1] == Hangup("remote")
    assert len(server.service.registry) == 0


async def test_outbound_media_is_paced_and_marks_confirm_playback(server, http):
    server.engine.greeting = 1.0
    p = await connect(server, http)
    cid = p.call_sid
    assert await p.wait_for(lambda: len(p.marks_echoed) >= 10 and p.media_in >= 50, 5)
    src = server.engine.sources[cid]
    t = np.array(p.arrivals[:50])
    # one second of audio arrives over ~one second minus the lead, never in one dump
    span = t[-1] - t[0]
    assert 0.75 <= span <= 2.0, span
    ahead = (np.arange(50) + 1) * 0.02 - (t - t[0])  # audio sent ahead of real time
    assert ahead.max() <= server.settings.lead + 0.02 + 0.05, ahead.max()  # the lead, one frame, scheduling slack
    # each mark came back after the audio before it played; the source heard about it
    assert src.rate == server.settings.read_rate == tr_rate(server, cid)
    assert await asyncio.wait_for(_until(lambda: src.played >= src.rate), 5)  # one second
    assert src.confirms == sorted(src.confirms)
    names = [n for n, _ in p.marks_in]
    assert [n for n, _ in p.marks_echoed] == names
    assert not p.late and not p.unexpected
    tr = server.engine.transports[cid]
    assert 50 <= tr.stats.frames_out <= 51  # one second, plus the decimator's 2 ms tail
    assert tr.stats.marks_confirmed == len(names)
    await p.hang_up()
    await asyncio.wait_for(server.engine.ended[cid].wait(), 5)


def tr_rate(server, cid) -> int:
    return server.engine.transports[cid].output_rate


async def _until(cond, step=0.01) -> bool:
    while not cond():
        await asyncio.sleep(step)
    return True


async def test_clear_is_sent_at_once_ahead_of_audio(server, http):
    server.engine.greeting = 5.0
    p = await connect(server, http)
    cid = p.call_sid
    assert await p.wait_for(lambda: p.media_in >= 25, 5)
    tr, src = server.engine.transports[cid], server.engine.sources[cid]
    played_before = src.played
    t_clear = time.monotonic()
    src.stop()  # what the engine does: its playout is empty
    tr.clear()
    assert await p.wait_for(lambda: p.clears, 2)
    assert p.clears[0] - t_clear < 0.1, p.clears[0] - t_clear  # one loop turn (slack for a loaded machine)
    await asyncio.sleep(0.2)
    assert all(a < p.clears[0] for a in p.arrivals), "no bot audio after the clear"
    # what the engine knew was played at the clear, the caller had really heard
    heard_by_then = sum(1 for h in p.heard if h.end <= t_clear) * 0.02
    assert 0 < played_before / src.rate <= heard_by_then
    # the marks Twilio echoes because of the clear were recognised as proving nothing
    assert await p.wait_for(lambda: len(p.marks_echoed) == len(p.marks_in), 2)
    assert await _until(lambda: tr.stats.marks_stale >= 1)
    assert tr.stats.clears == 1 and metric("duplexbot_twilio_clears_total") >= 1
    await p.hang_up()
    await asyncio.wait_for(server.engine.ended[cid].wait(), 5)


async def test_second_stream_for_the_same_call_is_refused(server, http):
    p = await connect(server, http)
    await asyncio.wait_for(server.engine.started.wait(), 5)
    twin = peer_for(server, call_sid=p.call_sid)  # same CallSid, fresh valid token
    assert (await twin.webhook(http)).status == 200
    await twin.open(http, ws_url(server))
    assert await twin.wait_for(lambda: twin.closed.is_set(), 5)
    assert twin.close_code == 1008
    assert metric("duplexbot_twilio_streams_total", result="duplicate") >= 1
    # the first stream is untouched
    await p.dtmf("1")
    assert await wait_engine(server, p.call_sid, lambda items: any(isinstance(i, Dtmf) for i in items))
    await twin.close()
    await p.hang_up()
    await asyncio.wait_for(server.engine.ended[p.call_sid].wait(), 5)


async def test_streams_without_a_valid_token_are_refused(server, http):
    p = peer_for(server)
    assert (await p.webhook(http)).status == 200
    cases = [{}, {**p.parameters, "token": p.parameters["token"][:-3] + "abc"}, {**p.parameters, "caller": "+1999"}]
    for params in cases:
        q = peer_for(server, call_sid=p.call_sid)
        await q.open(http, ws_url(server), parameters=params)
        assert await q.wait_for(lambda: q.closed.is_set(), 5) and q.close_code == 1008
        await q.close()
    # the genuine token still works once, and only once
    await p.open(http, ws_url(server))
    await asyncio.wait_for(server.engine.started.wait(), 5)
    await p.hang_up()
    await asyncio.wait_for(server.engine.ended[p.call_sid].wait(), 5)
    again = peer_for(server, call_sid=p.call_sid)
    await again.open(http, ws_url(server), parameters=p.parameters)
    assert await again.wait_for(lambda: again.closed.is_set(), 5) and again.close_code == 1008
    await again.close()
    assert metric("duplexbot_twilio_streams_total", result="token_reused") >= 1
    # no start at all within start_timeout
    silent = peer_for(server)
    await silent.open(http, ws_url(server), start=False)
    assert await silent.wait_for(lambda: silent.closed.is_set(), 5) and silent.close_code == 1008
    await silent.close()


async def test_malformed_frames_are_dropped_counted_and_survived(server, http):
    p = await connect(server, http)
    cid = p.call_sid
    await asyncio.wait_for(server.engine.started.wait(), 5)
    before = metric("duplexbot_twilio_frames_dropped_total", reason="bad_json")
    bad = ["{not json", json.dumps({"event": "media", "streamSid": p.stream_sid, "media": {"payload": "@@@"}}),
           json.dumps({"event": "teleport", "streamSid": p.stream_sid}),
           json.dumps({"event": "media", "streamSid": p.stream_sid,
                       "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "A" * 70000}}),
           b"\x00\x01binary"]
    for frame in bad:
        await p.send_raw(frame)
    await p.dtmf("9")
    assert await wait_engine(server, cid, lambda items: any(isinstance(i, Dtmf) for i in items))
    dropped = server.engine.transports[cid].stats.dropped
    assert dropped == {"bad_json": 1, "bad_base64": 1, "unknown_event": 1, "oversize": 1, "binary": 1}, dropped
    assert metric("duplexbot_twilio_frames_dropped_total", reason="bad_json") == before + 1
    assert not p.closed.is_set()
    await p.hang_up()
    await asyncio.wait_for(server.engine.ended[cid].wait(), 5)


async def test_socket_closing_mid_call_ends_the_call(server, http):
    server.engine.greeting = 3.0
    p = await connect(server, http)
    cid = p.call_sid
    assert await p.wait_for(lambda: p.media_in > 5, 5)
    await p.close()  # no stop message: the network went away
    await asyncio.wait_for(server.engine.ended[cid].wait(), 5)
    assert server.engine.items[cid][-1] == Hangup("connection_lost")
    assert len(server.service.registry) == 0


async def test_engine_hangup_closes_the_stream_after_the_audio_played(server, http):
    server.engine.greeting = 0.5
    p = await connect(server, http)
    cid = p.call_sid
    await asyncio.wait_for(server.engine.started.wait(), 5)
    tr, src = server.engine.transports[cid], server.engine.sources[cid]
    # the engine hangs up once its goodbye has been read; the last `lead` of it is still at Twilio
    assert await asyncio.wait_for(_until(lambda: src.remaining == 0), 5)
    await tr.close("bot")
    assert await p.wait_for(lambda: p.closed.is_set(), 5)
    assert 25 <= p.media_in <= 26  # 0.5 s, plus the decimator's 2 ms tail
    # the socket closed only once Twilio had played it all (every mark echoed)
    assert len(p.marks_echoed) == len(p.marks_in) >= 5
    assert src.played >= 25 * src.rate // 50
    await asyncio.wait_for(server.engine.ended[cid].wait(), 5)
    await p.close()


async def test_a_full_worker_answers_busy_and_refuses_streams(server, http):
    svc = server.service
    svc.settings = replace(svc.settings, max_streams=1)
    p = await connect(server, http)
    await asyncio.wait_for(server.engine.started.wait(), 5)
    q = peer_for(server)
    r = await q.webhook(http)
    assert r.status == 200 and '<Reject reason="busy" />' in q.twiml
    # a stream that got its token before the worker filled up is refused with "try again later"
    tok = peer_for(server)
    svc.settings = replace(svc.settings, max_streams=2)
    assert (await tok.webhook(http)).status == 200
    svc.settings = replace(svc.settings, max_streams=1)
    await tok.open(http, ws_url(server))
    assert await tok.wait_for(lambda: tok.closed.is_set(), 5) and tok.close_code == 1013
    await tok.close()
    await p.hang_up()
    await asyncio.wait_for(server.engine.ended[p.call_sid].wait(), 5)


async def test_a_slow_engine_loses_the_oldest_caller_audio_not_dtmf():
    from bot.engine.port import CallInfo
    from bot.transports.twilio import codec
    from bot.transports.twilio.media import TwilioMediaTransport
    from bot.transports.twilio.settings import TwilioSettings
    from bot.transports.twilio.stream import MediaStream

    class Ws:
        closed = False

    core = MediaStream()
    core.receive(codec.encode(codec.Start(1, "MZ1", "AC1", "CA1")), 0.0)
    tr = TwilioMediaTransport(Ws(), core, CallInfo("CA1", "twilio"), TwilioSettings(inbound_queue=10))
    tr.feed(codec.encode(codec.Dtmf(2, "MZ1", "4")))
    for i in range(30):
        tr.feed(codec.encode(codec.Media(3 + i, "MZ1", "inbound", i, i * 20, bytes([i]) * 160)))
    tr.feed(codec.encode(codec.Stop(40, "MZ1", "AC1", "CA1")))
    items = [await tr.receive() for _ in range(11)]  # the queue holds 10 items: the DTMF and 9 frames
    assert items[0] == Dtmf("4")
    assert [round(f.timestamp * 1000) for f in items[1:10]] == [i * 20 for i in range(21, 30)]  # the newest kept
    assert items[10] == Hangup("remote") and await tr.receive() == Hangup("remote")
    assert tr.stats.dropped == {"engine_slow": 21}
    await tr.close("test")
