"""Supervisor controls over HTTP (the real state store, calls faked): mute, hold, transfer and the
tenant's barge-in policy; every refusal is JSON and says why; a supervisor of one tenant never
sees or controls another's calls; a policy change is audited as old → new and reaches the
tenant's live calls through the policy watcher."""
from __future__ import annotations

import asyncio
import secrets

from aiohttp import ClientSession, web

from bot.audio import AudioFrame
from bot.routes import supervisor as supervisor_routes
from bot.state.keys import as_text

from .control_fakes import A, B, ControlledCall, open_runtime
from .peer import Server


async def setup():
    rt = await open_runtime("t" + secrets.token_hex(4))
    app = web.Application()
    supervisor_routes.setup(app, rt)
    acme = rt.calls.sessions["sip-acme-1"] = ControlledCall("sip-acme-1", "acme")
    globex = rt.calls.sessions["sip-globex-1"] = ControlledCall("sip-globex-1", "globex")
    web_call = rt.calls.sessions["webrtc-acme-2"] = ControlledCall("webrtc-acme-2", "acme", transport="webrtc")
    for c in (acme, globex, web_call):
        await rt.state.call_started(c.info)
    return rt, app, acme, globex, web_call


async def audit_stream(rt) -> list[dict[str, str]]:
    await rt.state.flush()
    raw = await rt.state.redis.xrange(rt.state.keys.audit)
    return [{as_text(k): as_text(v) for k, v in f.items()} for _, f in raw]


async def test_mute_hold_transfer_and_isolation():
    rt, app, acme, globex, web_call = await setup()
    try:
        async with Server(app) as srv, ClientSession() as http:
            u = srv.url + "/supervisor/api/calls/"
            # another tenant's call: 403, audited, untouched
            for path, body in (("mute", {"on": True}), ("hold", {"on": True}), ("transfer", {"target": "+15550199"})):
                async with http.post(u + "sip-globex-1/" + path, headers=A, json=body) as r:
                    assert r.status == 403 and await r.json() == {"error": "this call belongs to another tenant"}
            assert globex.taken_over_by is None and not globex.transport.transfers and not globex.said
            # mute: the bot is silent (a silent take-over), shown on the call's timeline
            async with http.post(u + "sip-acme-1/mute", headers=A, json={"on": True}) as r:
                assert r.status == 200 and (await r.json())["mode"] == "mute"
            assert acme.taken_over_by and acme.events[-1].type == "supervisor" and acme.events[-1].action == "mute"
            async with http.post(u + "sip-acme-1/hold", headers=A, json={"on": True}) as r:
                assert r.status == 409 and "muted by Alice@acme" in (await r.json())["error"]
            async with http.post(u + "sip-acme-1/mute", headers=A, json={"on": False}) as r:
                assert r.status == 200 and (await r.json())["mode"] == ""
            assert acme.taken_over_by is None
            # hold: the notice first, then silence; resume thanks the caller
            async with http.post(u + "sip-acme-1/hold", headers=A, json={"on": True}) as r:
                assert r.status == 200 and (await r.json())["mode"] == "hold"
            assert acme.said == ["Please hold for a moment."] and acme.taken_over_by
            async with http.get(u.replace("/calls/", "/calls"), headers=A) as r:
                listed = {c["call_id"]: c for c in (await r.json())["calls"]}
            async with http.post(u + "sip-acme-1/hold", headers=A, json={"on": False}) as r:
                assert r.status == 200
            assert acme.said[-1] == "Thank you for holding." and acme.taken_over_by is None
            # transfer: SIP goes through the transport; a browser call cannot
            async with http.post(u + "sip-acme-1/transfer", headers=A, json={"target": "sip:agent@example.org"}) as r:
                assert r.status == 200 and acme.transport.transfers == ["sip:agent@example.org"]
            assert any(e.type == "action" and e.name == "transfer" and e.ok for e in acme.events)
            async with http.post(u + "webrtc-acme-2/transfer", headers=A, json={"target": "+15550199"}) as r:
                assert r.status == 409 and "cannot be transferred" in (await r.json())["error"]
            acme.transport.can_transfer = False
            async with http.post(u + "sip-acme-1/transfer", headers=A, json={"target": "+15550199"}) as r:
                assert r.status == 502 and "could not transfer" in (await r.json())["error"]
            # bad input: clear 4xx, always JSON
            bad = [("transfer", {"target": ""}), ("transfer", {"target": "x" * 300}), ("transfer", {"target": "a\nb"}),
                   ("transfer", {"target": 5}), ("mute", {"on": "yes"}), ("hold", {"on": 1})]
            for path, body in bad:
                async with http.post(u + "sip-acme-1/" + path, headers=A, json=body) as r:
                    assert r.status == 400 and r.content_type == "application/json", (path, body)
            for data in (b"{", b"[1]", b"\xff\xfe"):
                async with http.post(u + "sip-acme-1/mute", headers=A, data=data) as r:
                    assert r.status == 400 and "JSON" in (await r.json())["error"]
            async with http.post(u + "sip-acme-1/mute", headers={"Authorization": "Bearer nope"}, json={}) as r:
                assert r.status == 401
        audits = await audit_stream(rt)
        actions = [(a["action"], a["actor"], a["call_id"]) for a in audits]
        assert ("mute", "Alice@acme", "sip-acme-1") in actions and ("hold", "Alice@acme", "sip-acme-1") in actions
        assert ("transfer", "Alice@acme", "sip-acme-1") in actions
        assert sum(1 for a in audits if a["action"] == "denied" and a["call_id"] == "sip-globex-1") == 3
        assert listed["sip-acme-1"]["mode"] == "hold" and listed["sip-acme-1"]["mode_by"] == "Alice@acme"
        assert set(listed) == {"sip-acme-1", "webrtc-acme-2"}
    finally:
        await rt.state.close()


async def test_ids_of_any_length_and_unknown_paths_answer_json():
    rt, app, *_ = await setup()
    try:
        async with Server(app) as srv, ClientSession() as http:
            base = srv.url + "/supervisor/api/"
            cases = [("POST", "calls/" + "x" * 5000 + "/mute", 400), ("POST", "calls/" + "y" * 3000 + "/mute", 404),
                     ("GET", "calls/%E2%98%83%00/network", 404), ("GET", "calls/a%2Fb/levels", 404),
                     ("GET", "history/" + "z" * 3000, 404), ("GET", "history/" + "z" * 5000 + "/export", 400),
                     ("GET", "history/%F0%9F%93%9E", 404), ("GET", "nothing/here", 404), ("DELETE", "policy", 405)]
            for method, path, status in cases:
                async with http.request(method, base + path, headers=A, json={"on": True}) as r:
                    assert r.status == status and r.content_type == "application/json", (method, path[:40], r.status)
                    assert (await r.json())["error"]
    finally:
        await rt.state.close()


async def test_policy_change_is_validated_audited_and_applied_live():
    rt, app, acme, globex, _ = await setup()
    seen_acme = len(acme.policies)
    rt.state.watch_policy(acme.info, acme.update_policy)
    rt.state.watch_policy(globex.info, globex.update_policy)
    await asyncio.wait_for(rt.state.watcher.subscribed.wait(), 5)
    try:
        async with Server(app) as srv, ClientSession() as http:
            u = srv.url + "/supervisor/api/policy"
            async with http.get(u, headers=A) as r:
                got = await r.json()
                assert got["policy"] == {"interruption_sensitivity": 0.5, "end_of_turn": "balanced"}
            for body, words in (({"interruption_sensitivity": 1.5}, "[0, 1]"), ({"end_of_turn": "fastest"}, "one of"),
                                ({"interruption_sensitivity": "high"}, "number"), ({"backchannel": "interrupt"},
                                "cannot be changed"), ({"nope": 1}, "unknown"), ({}, "at least one"),
                                ({"end_of_turn": "fast", "call_id": 7}, "call id")):
                async with http.put(u, headers=A, json=body) as r:
                    assert r.status == 400 and words in (await r.json())["error"], body
            # from another tenant's call: refused, nothing changes
            async with http.put(u, headers=A, json={"end_of_turn": "fast", "call_id": "sip-globex-1"}) as r:
                assert r.status == 403
            async with http.put(u, headers=A, json={"interruption_sensitivity": 0.8, "end_of_turn": "fast",
                                                    "call_id": "sip-acme-1"}) as r:
                assert r.status == 200
                got = await r.json()
            assert got["policy"] == {"interruption_sensitivity": 0.8, "end_of_turn": "fast"}
            assert got["changed"] == "interruption_sensitivity 0.5 → 0.8, end_of_turn balanced → fast"
            async with http.get(u, headers=B) as r:  # globex keeps its own
                assert (await r.json())["policy"] == {"interruption_sensitivity": 0.5, "end_of_turn": "balanced"}
        for _ in range(100):  # the watcher re-resolves the tenant's calls and applies the new thresholds
            if len(acme.policies) > seen_acme and acme.policies[-1].end_of_turn_silence == 0.3:
                break
            await asyncio.sleep(0.05)
        assert acme.policies[-1].end_of_turn_silence == 0.3 and acme.policies[-1].interrupt_threshold == 0.2
        assert not globex.policies or globex.policies[-1].end_of_turn_silence == 0.5
        assert acme.events[-1].type == "supervisor" and acme.events[-1].action == "policy"
        audits = [a for a in await audit_stream(rt) if a["action"] == "policy_change"]
        assert len(audits) == 1 and audits[0]["actor"] == "Alice@acme" and audits[0]["tenant"] == "acme"
        assert audits[0]["detail"] == "interruption_sensitivity 0.5 → 0.8, end_of_turn balanced → fast"
        assert audits[0]["call_id"] == "sip-acme-1" and int(audits[0]["ts"]) > 0
    finally:
        await rt.state.close()


async def test_levels_and_network_of_a_live_call():
    rt, app, acme, *_ = await setup()
    try:
        async with Server(app) as srv, ClientSession() as http:
            u = srv.url + "/supervisor/api/calls/sip-acme-1/"
            async with http.get(u + "levels", headers=A) as r:
                assert r.status == 200 and (await r.json())["caller"] == []
            import numpy as np
            loud = (np.sin(np.arange(512) / 5) * 8000).astype(np.int16)
            for i in range(20):  # 20 chunks of 32 ms: 0.64 s, six 100 ms samples
                for tap in list(acme.taps):
                    tap(AudioFrame(loud, 16000, i * 0.032), AudioFrame(np.zeros(512, np.int16), 16000, i * 0.032))
            async with http.get(u + "levels", headers=A) as r:
                lv = await r.json()
            assert lv["dt"] == 0.1 and len(lv["caller"]) == 6 and all(-20 < v < -10 for v in lv["caller"])
            assert all(v == -90 for v in lv["bot"])
            async with http.get(u + "levels", headers=B) as r:
                assert r.status == 403
            async with http.get(u + "network", headers=A) as r:
                n = await r.json()
                assert r.status == 200 and n["available"] is False and "sip" in n["why"]
    finally:
        await rt.state.close()


async def test_a_notice_is_waited_for_and_a_take_over_releases_a_mute():
    from bot.supervisor.auth import Supervisor
    from bot.supervisor.controls import say_and_wait

    rt, app, acme, *_ = await setup()
    console = app[supervisor_routes.CONSOLE_KEY]
    try:
        await console.controls.mute(Supervisor("acme", "Alice"), "sip-acme-1", True)
        assert acme.taken_over_by == "Alice@acme (bot muted)"
        assert console.controls.release("sip-acme-1") is not None and not console.controls.modes
        acme.bot_speaking = True
        waited = asyncio.ensure_future(say_and_wait(acme, "One moment.", timeout=2.0))
        await asyncio.sleep(0.1)
        assert not waited.done() and acme.said[-1] == "One moment."  # waits while the notice plays
        acme.bot_speaking = False
        await asyncio.wait_for(waited, 1)
    finally:
        await rt.state.close()
