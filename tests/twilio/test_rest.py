"""Transfer (call redirect) and outbound calls against a local server checking what Twilio's REST API requires."""
from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from bot.engine.port import Hangup
from bot.transports.twilio.rest import TwilioApiError, TwilioRest
from bot.transports.twilio.settings import TwilioSettings

from .conftest import ACCOUNT, AUTH
from .test_media import connect


async def test_transfer_redirects_the_live_call_with_dial(server, http, twilio_api):
    server.engine.greeting = 0.3
    p = await connect(server, http)
    await asyncio.wait_for(server.engine.started.wait(), 5)
    tr = server.engine.transports[p.call_sid]
    assert await tr.transfer("+15557654321") is True
    (req,) = twilio_api.requests
    assert req["op"] == "update" and req["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{p.call_sid}.json"
    dial = ET.fromstring(req["Twiml"]).find("Dial")
    assert dial.get("callerId") == "+15550009999"
    assert [(e.tag, e.text) for e in dial] == [("Number", "+15557654321")]
    # the greeting had finished playing before the redirect cut the stream
    assert len(p.marks_echoed) == len(p.marks_in)
    assert await tr.transfer("sip:desk@pbx.example.com") is True
    assert ET.fromstring(twilio_api.requests[-1]["Twiml"]).find("Dial/Sip").text == "sip:desk@pbx.example.com"
    assert await tr.transfer("not a number") is False
    # Twilio then ends the stream: the call ends as transferred
    await p.hang_up()
    await asyncio.wait_for(server.engine.ended[p.call_sid].wait(), 5)
    assert server.engine.items[p.call_sid][-1] == Hangup("transferred")


async def test_transfer_failure_is_reported_not_raised(server, http, twilio_api):
    p = await connect(server, http)
    await asyncio.wait_for(server.engine.started.wait(), 5)
    twilio_api.fail_with = 503
    assert await server.engine.transports[p.call_sid].transfer("+15557654321") is False
    await p.hang_up()
    await asyncio.wait_for(server.engine.ended[p.call_sid].wait(), 5)


async def test_rest_client_errors(twilio_api):
    s = TwilioSettings(auth_token="wrong", account_sid=ACCOUNT, public_base_url="https://bot.example.com",
                       api_base=twilio_api.base)
    rest = TwilioRest(s)
    with pytest.raises(TwilioApiError) as e:
        await rest.create_call("+15551112222", "+15553334444")
    assert e.value.status == 401 and e.value.code == 20003 and not e.value.retryable
    await rest.close()
    rest = TwilioRest(replace(s, auth_token=AUTH, api_base="http://127.0.0.1:9", rest_timeout=2))
    with pytest.raises(TwilioApiError) as e:
        await rest.redirect("CA1", "<Response/>")
    assert e.value.retryable
    await rest.close()
    with pytest.raises(ValueError):
        TwilioRest(TwilioSettings())


async def test_outbound_call_endpoint(server, http, twilio_api):
    r = await http.post(server.base + "/twilio/call", json={"to": "+15551112222"})
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["sid"].startswith("CA") and body["from"] == "+15550009999"
    (req,) = twilio_api.requests
    assert req["op"] == "create" and req["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
    assert (req["To"], req["From"], req["Url"], req["Method"]) == (
        "+15551112222", "+15550009999", "https://bot.example.com/twilio/voice", "POST")
    assert (await http.post(server.base + "/twilio/call", json={"to": "5551112222"})).status == 400
    twilio_api.fail_with = 500
    r = await http.post(server.base + "/twilio/call", json={"to": "+15551112222"})
    assert r.status == 502 and (await r.json())["retryable"] is True



async def test_outbound_call_endpoint_bearer_token(server, http, twilio_api):
    svc = server.service
    object.__setattr__(svc, "settings", replace(svc.settings, call_api_token="s3cret"))
    assert (await http.post(server.base + "/twilio/call", json={"to": "+15551112222"})).status == 403
    r = await http.post(server.base + "/twilio/call", json={"to": "+15551112222"},
                        headers={"Authorization": "Bearer wrong"})
    assert r.status == 403
    r = await http.post(server.base + "/twilio/call", json={"to": "+15551112222"},
                        headers={"Authorization": "Bearer s3cret"})
    assert r.status == 200 and len(twilio_api.requests) == 1


def test_duplexbot_call_command(monkeypatch, capsys):
    """`duplexbot call +1...` against the fake REST API (run in its own thread and loop)."""
    import threading

    from aiohttp import web

    from bot.cli import main

    from .conftest import FakeTwilioApi, _serve

    api = FakeTwilioApi()
    ready, done = threading.Event(), None
    loop = asyncio.new_event_loop()

    def serve():
        nonlocal done
        runner, api.base = loop.run_until_complete(_serve(api.app()))
        done = runner
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert ready.wait(10)
    try:
        for k, v in {"TWILIO_AUTH_TOKEN": AUTH, "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_API_BASE": api.base,
                     "DUPLEXBOT_PUBLIC_URL": "https://bot.example.com", "TWILIO_CALLER_ID": "+15550001111"}.items():
            monkeypatch.setenv(k, v)
        assert main(["call", "+15552223333"]) == 0
        assert "CA" in capsys.readouterr().out
        (req,) = api.requests
        assert (req["To"], req["From"], req["Url"]) == ("+15552223333", "+15550001111",
                                                         "https://bot.example.com/twilio/voice")
        assert main(["call", "12345"]) == 2
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong")
        assert main(["call", "+15552223333"]) == 1
        assert "401" in capsys.readouterr().err
    finally:
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)
        loop.close()
    assert isinstance(done, web.AppRunner)
