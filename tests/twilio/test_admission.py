"""Admission on the Twilio routes (real sockets on 127.0.0.1, fake engine): beyond the process's
capacity the voice webhook answers `<Reject reason="busy"/>`, or `<Dial>` to the overflow number
when one is set, and a media stream that holds no slot is closed with 1013 before the engine sees it."""
from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest
from aiohttp import web

from bot.bench.twilio_peer import TwilioPeer
from bot.engine.admission import AdmissionController, AdmissionSettings
from bot.engine.port import Hangup
from bot.routes.twilio import install
from bot.transports.twilio.settings import TwilioSettings

from .conftest import ACCOUNT, AUTH, FakeEngine, _serve

PUBLIC = "https://bot.example.com"


@pytest.fixture
async def serve():
    runners = []

    async def start(cap: int, overflow: str = ""):
        engine = FakeEngine()
        controller = AdmissionController(AdmissionSettings(max_calls=cap, overflow_number=overflow))
        app = web.Application()
        settings = TwilioSettings(auth_token=AUTH, account_sid=ACCOUNT, public_base_url=PUBLIC, start_timeout=2.0)
        install(app, settings, engine.run, admission=controller)
        runner, base = await _serve(app)
        runners.append(runner)
        return base, engine, controller

    yield start
    for r in runners:
        await r.cleanup()
    leaked = [t for t in asyncio.all_tasks() if t.get_name().startswith("twilio-") and not t.done()]
    assert not leaked, f"tasks leaked: {leaked}"


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/twilio/media"


async def webhook(base, http) -> tuple[TwilioPeer, ET.Element]:
    p = TwilioPeer(base, AUTH, PUBLIC, account_sid=ACCOUNT)
    r = await p.webhook(http)
    assert r.status == 200 and r.content_type == "text/xml"
    return p, ET.fromstring(p.twiml)


async def test_beyond_capacity_the_webhook_rejects_busy_and_a_hangup_frees_the_slot(serve, http):
    base, engine, controller = await serve(cap=1)
    first, twiml = await webhook(base, http)
    assert twiml.find("./Connect/Stream") is not None
    second, twiml = await webhook(base, http)
    (reject,) = list(twiml)
    assert reject.tag == "Reject" and reject.get("reason") == "busy"
    assert controller.refused[("twilio", "capacity")] == 1
    await first.open(http, ws_url(base))                    # the reservation is taken up by the stream
    await asyncio.wait_for(engine.started.wait(), 5)
    assert controller.live(asyncio.get_running_loop().time()) == 1
    await first.hang_up()
    await asyncio.wait_for(engine.ended[first.call_sid].wait(), 5)
    assert isinstance(engine.items[first.call_sid][-1], Hangup)
    for _ in range(100):
        if controller.live(asyncio.get_running_loop().time()) == 0:
            break
        await asyncio.sleep(0.02)
    third, twiml = await webhook(base, http)  # the slot is free again
    assert twiml.find("./Connect/Stream") is not None
    await third.close()


@pytest.mark.parametrize("target,verb", [("+15550001111", "Number"), ("sip:queue@10.0.0.7", "Sip")])
async def test_beyond_capacity_the_webhook_redirects_to_the_overflow_number(serve, http, target, verb):
    base, engine, controller = await serve(cap=1, overflow=target)
    await webhook(base, http)
    _, twiml = await webhook(base, http)
    (dial,) = list(twiml)
    assert dial.tag == "Dial" and [(c.tag, c.text) for c in dial] == [(verb, target)]
    assert "<Stream" not in ET.tostring(twiml, encoding="unicode")


async def test_a_stream_without_a_slot_is_closed_before_the_engine_sees_it(serve, http):
    base, engine, controller = await serve(cap=1)
    p, twiml = await webhook(base, http)
    assert twiml.find("./Connect/Stream") is not None
    # the webhook's reservation lapsed and another transport took the last slot meanwhile
    controller.release(p.call_sid, "twilio")
    assert controller.admit("sip-call", "sip", asyncio.get_running_loop().time()).admitted
    await p.open(http, ws_url(base))
    await asyncio.wait_for(p.closed.wait(), 5)
    assert p.close_code == 1013 and p.call_sid not in engine.items
    assert controller.refused[("twilio", "capacity")] == 1
    await p.close()
