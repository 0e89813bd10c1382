"""Ended-call history over HTTP against the real state store: per tenant, with the audit trail,
the transcript as heard, the events in their wire form (the timeline's input), the recording
record (no audio: the bot stores none) and a JSON export; another tenant's call is 403 and
audited. The browser view of an ended call is in test_timeline.py."""
from __future__ import annotations

import secrets

from aiohttp import ClientSession, web

from bot.engine import events as ev
from bot.engine.port import CallInfo
from bot.routes import supervisor as supervisor_routes

from .control_fakes import A, B, open_runtime
from .peer import Server


async def stored_call(store, call_id: str, tenant: str) -> None:
    info = CallInfo(call_id=call_id, transport="sip", caller="+15550100", tenant=tenant)
    await store.call_started(info)
    for e in (ev.CallStarted(call_id=call_id, t=0.0, transport="sip", tenant=tenant),
              ev.BotSpeechStart(call_id=call_id, t=0.2, text="Hello, how can I help?", turn=1),
              ev.BotSpeechStop(call_id=call_id, t=1.9, reason="done", turn=1),
              ev.TranscriptFinal(call_id=call_id, t=1.9, text="Hello, how can I help?", speaker="bot"),
              ev.EndOfTurn(call_id=call_id, t=4.1, confidence=0.91, silence=0.45, policy="duplex"),
              ev.TranscriptFinal(call_id=call_id, t=4.3, text="Where is your store?", speaker="caller"),
              ev.BotSpeechStart(call_id=call_id, t=4.9, text="We are at 12 Harbour Street.", turn=2),
              ev.BargeIn(call_id=call_id, t=5.6, confidence=0.88, reason="p(interrupt)=0.88", policy="duplex",
                         onset=5.4),
              ev.BotSpeechStop(call_id=call_id, t=5.6, reason="barge_in", turn=2),
              ev.BotTruncated(call_id=call_id, t=5.6, heard="We are at", unheard="12 Harbour Street.", turn=2),
              ev.TranscriptFinal(call_id=call_id, t=5.6, text="We are at", speaker="bot"),
              ev.CallEnded(call_id=call_id, t=8.0, reason="remote")):
        store.emit(e)
    store.audit(tenant=tenant, actor=f"Alice@{tenant}", action="listen_start", call_id=call_id)
    await store.call_ended(call_id, "remote")
    await store.flush()


async def test_history_per_tenant_with_audit_transcript_and_export():
    rt = await open_runtime("t" + secrets.token_hex(4))
    app = web.Application()
    supervisor_routes.setup(app, rt)
    odd = "weird/id with spaces ☃ " + "x" * 300  # a SIP Call-ID can be anything: stored under a hashed key
    try:
        await stored_call(rt.state, "sip-acme-1", "acme")
        await stored_call(rt.state, odd, "acme")
        await stored_call(rt.state, "sip-globex-1", "globex")
        async with Server(app) as srv, ClientSession() as http:
            u = srv.url + "/supervisor/api/history"
            async with http.get(u, headers=A) as r:
                calls = (await r.json())["calls"]
            assert {c["call_id"] for c in calls} == {"sip-acme-1", odd}
            assert all(c["state"] == "ended" and c["end_reason"] == "remote" for c in calls)
            async with http.get(u, headers=B) as r:
                assert [c["call_id"] for c in (await r.json())["calls"]] == ["sip-globex-1"]
            async with http.get(u + "/sip-acme-1", headers=A) as r:
                h = await r.json()
            types = [e["type"] for e in h["events"]]
            assert types[0] == "call_started" and types[-1] == "call_ended" and "barge_in" in types
            barge = next(e for e in h["events"] if e["type"] == "barge_in")
            assert barge["t"] == 5.6 and barge["confidence"] == 0.88 and barge["onset"] == 5.4
            said = [(x["speaker"], x["text"], x["interrupted"]) for x in h["transcript"]]
            assert ("bot", "We are at", True) in said and ("caller", "Where is your store?", False) in said
            assert [a["action"] for a in h["audit"]] == ["listen_start"] and h["audit"][0]["actor"] == "Alice@acme"
            assert h["recording"]["audio"] is None and "stores no call audio" in h["recording"]["why"]
            assert h["levels"] is None  # no worker kept levels for a call it never had
            from urllib.parse import quote
            async with http.get(u + "/" + quote(odd, safe=""), headers=A) as r:
                assert r.status == 200 and (await r.json())["call"]["call_id"] == odd
            async with http.get(u + "/sip-acme-1/export", headers=A) as r:
                assert r.status == 200 and "attachment" in r.headers["Content-Disposition"]
                assert (await r.json())["call"]["call_id"] == "sip-acme-1"
            # isolation: globex's supervisor never sees acme's call (403, audited), nor by export
            for path in ("/sip-acme-1", "/sip-acme-1/export"):
                async with http.get(u + path, headers=B) as r:
                    assert r.status == 403 and await r.json() == {"error": "this call belongs to another tenant"}
            async with http.get(u + "/nope", headers=A) as r:
                assert r.status == 404 and (await r.json())["error"] == "no such call in the history"
            for q in ("?limit=abc", "?limit=0", "?limit=999", "?limit=-1"):
                async with http.get(u + q, headers=A) as r:
                    assert r.status == 400 and "limit" in (await r.json())["error"]
            async with http.get(u, headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401 and r.content_type == "application/json"
        await rt.state.flush()
        from bot.state.keys import as_text
        audit = [{as_text(k): as_text(v) for k, v in f.items()}
                 for _, f in await rt.state.redis.xrange(rt.state.keys.audit)]
        assert sum(1 for a in audit if a["action"] == "denied" and a["actor"] == "Bob@globex") == 2
        assert any(a["action"] == "export" and a["call_id"] == "sip-acme-1" for a in audit)
    finally:
        await rt.state.close()
