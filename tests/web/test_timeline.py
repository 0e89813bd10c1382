"""Headless Chromium against the real engine: the call timeline (both channels' levels with the
decisions on one time axis, and the per-turn latency chart) live on the call page and in the
supervisor console, network figures on both, mute, hold and transfer from the console's buttons,
a live policy change from the console, the take-over notice the caller hears and sees, and the
ended call in the console's history with its audit trail and JSON export. Screenshots go to
docs/img/timeline-live.png and docs/img/timeline-ended.png when DUPLEXBOT_SCREENSHOTS=1 (to
refresh the docs), else to a temporary folder (so a test run leaves the checkout clean)."""
from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path

import pytest

from .cdp import CHROMIUM, Browser, artifacts_dir
from .peer import Server
from .test_engine import close_runtime
from .voices import wav_file

pytestmark = [pytest.mark.peer, pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed")]

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
if os.environ.get("DUPLEXBOT_SCREENSHOTS") != "1":
    DOCS_IMG = Path(tempfile.mkdtemp(prefix="duplexbot-shots-"))
CHART = "document.querySelector('#view canvas[data-role=chart]').dataset"
LAT = "document.querySelector('#view canvas[data-role=latency-chart]').dataset"


async def test_timeline_live_and_ended(tmp_path: Path, monkeypatch):
    shots = artifacts_dir()
    # "Wait, stop." about 4 s into the 7 s hours answer: a barge-in on the timeline (usually caught)
    caller_wav = wav_file(tmp_path / "caller.wav", [("", 6.0), ("What are your opening hours?", 4.2),
                                                     ("Wait, stop.", 8.0), ("Where is your store?", 60.0)])
    sup_wav = wav_file(tmp_path / "supervisor.wav", [("Hello, this is Alice from the team.", 1.0)])
    monkeypatch.setenv("DUPLEXBOT_SUPERVISOR_TOKENS", "acme:tokA-secret,globex:tokB-secret")
    monkeypatch.delenv("DUPLEXBOT_WEBRTC_TENANT", raising=False)
    from bot.runtime import Runtime
    from bot.server import build_app
    from bot.settings import Settings

    rt = await Runtime.start(Settings.for_tests())
    caller_b, sup_b = Browser(caller_wav, "caller"), Browser(sup_wav, "supervisor")
    try:
        async with Server(build_app(rt)) as srv:
            await asyncio.gather(caller_b.start(), sup_b.start())
            call = await caller_b.new_page(srv.url + "/?tenant=acme")
            await call.wait("document.querySelector('#tenant').value === 'acme'", 10, "the tenant")
            await call.js("document.querySelector('#call').click()")
            await call.wait("window.duplexbot.connected", 15, "the call")
            cid = await call.js("window.duplexbot.callId")

            sup = await sup_b.new_page(srv.url + "/supervisor")
            await sup.js("window.supervisor.login('tokA-secret', 'Alice')")
            await sup.wait(f"!!document.querySelector('#calls tr[data-call=\"{cid}\"]')", 15, "the call listed")
            await sup.js(f"window.supervisor.watch('{cid}')")
            await sup.wait("window.supervisor.policy && window.supervisor.policy.policy.end_of_turn", 10, "the policy")

            # ---- live: levels stream in, the first answer draws a decision and a latency bar -----------
            await call.wait("window.duplexbot.levels > 30", 15, "levels on the call page")
            await call.wait(f"Number({LAT}.bars || 0) >= 1 && Number({CHART}.marks || 0) >= 1", 60,
                            "the first turn on the timeline")
            assert await call.js("window.duplexbot.events.some(e => e.type === 'end_of_turn')")
            await sup.wait("window.supervisor.levels > 10", 10, "levels in the console")
            await sup.wait(f"Number({CHART}.levels) > 50 && Number({CHART}.marks) >= 1", 10, "the console timeline")
            # the caller's words show above the axis: some 100 ms windows well above silence
            loud = await call.js("window.duplexbot.events.length && 1")
            assert loud
            # ---- network: the browser's getStats and the bot's (aiortc) --------------------------------
            await call.wait("window.duplexbot.network.browser && window.duplexbot.network.browser.jitter != null"
                            " && window.duplexbot.network.server && window.duplexbot.network.server.jitter != null",
                            15, "network figures on the call page")
            await sup.wait("window.supervisor.network && window.supervisor.network.available"
                           " && window.supervisor.network.jitter != null", 10, "network figures in the console")
            net = await call.js("JSON.stringify(window.duplexbot.network)")
            await call.wait("/Where is your store/.test(JSON.stringify(window.duplexbot.events)) || "
                            "window.duplexbot.events.filter(e => e.type === 'end_of_turn').length >= 2", 40,
                            "the second question")
            await asyncio.sleep(3.0)  # the second answer under way: levels on both sides
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            await call.screenshot(DOCS_IMG / "timeline-live.png")
            await sup.screenshot(shots / "console-timeline-live.png")

            # ---- the console's controls: mute, hold, and a transfer a browser call cannot take ---------
            session = rt.calls.get(cid)
            await sup.js("document.querySelector('#mute').click()")
            await sup.wait("window.supervisor.controls.mode === 'mute' && "
                           "document.querySelector('#mute').textContent === 'Unmute the bot'", 10, "muted")
            assert session.taken_over_by == "Alice@acme (bot muted)"
            await sup.wait("/Bot muted/.test(document.querySelector('#view .timeline').textContent)", 5, "mute shown")
            await sup.js("document.querySelector('#mute').click()")
            await sup.wait("window.supervisor.controls.mode === ''", 10, "unmuted")
            assert session.taken_over_by is None
            await sup.js("document.querySelector('#hold').click()")
            await call.wait("/You are on hold/.test(document.querySelector('#notice').textContent)", 10,
                            "the hold notice on the call page")
            for _ in range(300):  # silent once the hold notice has played
                if session.taken_over_by == "Alice@acme (on hold)":
                    break
                await asyncio.sleep(0.05)
            assert session.taken_over_by == "Alice@acme (on hold)"
            await sup.wait("window.supervisor.controls.mode === 'hold'", 15, "on hold in the console")
            await sup.js("document.querySelector('#hold').click()")
            await call.wait("/back with the bot/.test(document.querySelector('#notice').textContent)", 10, "resumed")
            await sup.js("document.querySelector('#transfer-to').value = 'sip:agent@example.org';"
                         "document.querySelector('#transfer-form').requestSubmit()")
            await sup.wait("/cannot be transferred/.test(document.querySelector('#error').textContent)", 10,
                           "the transfer refused for a browser call")

            # ---- the tenant's policy, changed live from the console ------------------------------------
            r = await sup.js("window.supervisor.setPolicy({interruption_sensitivity: 0.8, end_of_turn: 'fast'})"
                             ".then(r => r.changed)")
            assert r == "interruption_sensitivity 0.5 → 0.8, end_of_turn balanced → fast", r
            for _ in range(60):
                if session.policy.settings.end_of_turn_silence == 0.3:
                    break
                await asyncio.sleep(0.05)
            assert session.policy.settings.end_of_turn_silence == 0.3
            await sup.wait("/Policy changed/.test(document.querySelector('#view .timeline').textContent)", 5,
                           "the change on the call's timeline")

            # ---- take-over: the bot tells the caller first, the page shows it -------------------------
            await sup.js(f"window.supervisor.takeOver('{cid}')")
            await call.wait("/A member of our team has joined the call/.test(document.querySelector('#notice')"
                            ".textContent)", 10, "the take-over notice on the call page")
            await sup.wait("window.supervisor.events.some(e => e.type === 'bot_speech_start' && "
                           "/joining the call/.test(e.text))", 15, "the bot saying the notice")
            for _ in range(200):  # the supervisor's voice replaces the bot once the notice has played
                if session.taken_over_by == "Alice@acme":
                    break
                await asyncio.sleep(0.05)
            assert session.taken_over_by == "Alice@acme"
            await asyncio.sleep(1.0)
            await sup.js(f"window.supervisor.handBack('{cid}')")
            await call.wait("/back with the bot/.test(document.querySelector('#notice').textContent)", 10,
                            "hand-back on the call page")

            # ---- the end: the ended call in the console's history ---------------------------------------
            await call.js("document.querySelector('#hangup').click()")
            await sup.wait("/Call ended/.test(document.querySelector('#view .timeline').textContent)", 15, "the end")
            await sup.wait(f"!document.querySelector('#calls tr[data-call=\"{cid}\"]')", 10,
                           "the call off the live list")
            await rt.state.flush()
            await sup.wait(f"window.supervisor.loadHistory().then(cs => cs.some(c => c.call_id === '{cid}'))", 15,
                           "the call in the history")
            await sup.js(f"window.supervisor.openEnded('{cid}')")
            await sup.wait(f"Number({CHART}.levels) > 100 && Number({CHART}.marks) >= 3", 10, "the ended timeline")
            audit = await sup.js("document.querySelector('#audit').textContent")
            for action in ("mute", "unmute", "hold", "resume", "transfer_refused", "takeover_start", "takeover_stop",
                           "policy_change"):
                assert action in audit, audit
            try:
                await sup.wait("/opening hours/.test(document.querySelector('#view .transcript').textContent)", 5,
                               "the transcript as heard")
            except TimeoutError as e:
                raise AssertionError(await sup.js("JSON.stringify([document.querySelector('#view .transcript')"
                                                  ".textContent, window.supervisor.events.map(e => e.type + ':' + "
                                                  "(e.text || ''))])")) from e
            await sup.js("document.querySelector('#export').click()")
            await sup.wait("window.supervisor.exported", 10, "the export")
            exported = json.loads(await sup.js("window.supervisor.exported"))
            assert exported["call"]["call_id"] == cid and exported["call"]["tenant"] == "acme"
            assert any(a["action"] == "policy_change" for a in exported["audit"])
            assert exported["levels"]["caller"] and exported["recording"]["audio"] is None
            await sup.screenshot(DOCS_IMG / "timeline-ended.png")
            await call.screenshot(shots / "call-page-ended.png")

            # ---- another tenant's supervisor sees none of it ------------------------------------------
            other = await sup_b.new_page(srv.url + "/supervisor")
            await other.js("window.supervisor.login('tokB-secret', 'Bob')")
            await other.wait("document.querySelector('#link').textContent === 'Live'", 10, "globex console")
            calls = await other.js("window.supervisor.loadHistory().then(cs => cs.map(c => c.call_id))")
            assert cid not in calls
            err = await other.js(f"window.supervisor.openEnded('{cid}').then(() => 'opened', e => e.message)")
            assert err == "this call belongs to another tenant"
            for page in (call, sup):
                assert not page.errors, page.errors
            print("network", net)
    finally:
        await asyncio.gather(caller_b.close(), sup_b.close(), return_exceptions=True)
        await close_runtime(rt)
