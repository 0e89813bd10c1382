"""Headless Chromium against the real bot: the call page and the supervisor console, driven over
the DevTools protocol. Chromium's fake microphone plays WAVs rendered with hibari TTS. Screenshots
of both pages go to test-artifacts/."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from .cdp import CHROMIUM, Browser, artifacts_dir
from .peer import Server
from .test_engine import TOKENS, close_runtime
from .voices import wav_file

pytestmark = [pytest.mark.peer, pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed")]


async def audit_entries(rt) -> list[dict]:
    await rt.state.flush()
    raw = await rt.state.redis.xrange(rt.state.keys.audit)
    out = []
    for _id, fields in raw:
        out.append({(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                    for k, v in fields.items()})
    return out


def bot_said(page_events_js: str) -> str:
    return f"({page_events_js}).filter(e => e.type === 'bot_speech_start').map(e => e.text).join(' | ')"


async def test_call_page_and_supervisor_console(tmp_path: Path, monkeypatch):
    shots = artifacts_dir()
    # The fake microphone loops: the caller asks every ~20 s (first once the greeting is over).
    caller_wav = wav_file(tmp_path / "caller.wav", [("", 8.0), ("What are your opening hours?", 10.0)])
    sup_wav = wav_file(tmp_path / "supervisor.wav", [("Hello, this is Alice from the store. How can I help?", 0.5)])
    monkeypatch.setenv("DUPLEXBOT_SUPERVISOR_TOKENS", TOKENS)
    monkeypatch.setenv("DUPLEXBOT_WEBRTC_TENANT", "acme")
    from bot.runtime import Runtime
    from bot.server import build_app
    from bot.settings import Settings

    rt = await Runtime.start(Settings.for_tests())
    caller_b = Browser(caller_wav, "caller")
    sup_b = Browser(sup_wav, "supervisor")
    try:
        async with Server(build_app(rt)) as srv:
            await asyncio.gather(caller_b.start(), sup_b.start())
            # ---- the caller's page: call, hear the greeting, ask, hear the answer ----------------
            call = await caller_b.new_page(srv.url + "/")
            await call.js("document.querySelector('#call').click()")
            await call.wait("window.duplexbot.connected && window.duplexbot.callId", 15, "the call to connect")
            cid = await call.js("window.duplexbot.callId")
            await call.wait("window.duplexbot.bot.loud > 10", 15, "the greeting's audio in the page")
            await call.wait(f"/nine/.test({bot_said('window.duplexbot.events')})", 40, "the opening hours answer")
            heard = await call.js("window.duplexbot.events.filter(e => e.type === 'transcript_final' && "
                                  "e.speaker === 'caller').map(e => e.text).join(' ')")
            assert "hours" in heard.lower(), heard
            assert await call.js("document.querySelectorAll('.transcript li.caller').length") >= 1
            assert await call.js("document.querySelectorAll('.timeline .tag.end_of_turn').length") >= 1
            assert await call.js("document.querySelector('[data-stat=response] .v').textContent") != "—"
            await call.screenshot(shots / "call-page.png")
            connect_ms = await call.js("window.duplexbot.connectMs")

            # ---- the supervisor: sign in, see the call, listen ------------------------------------
            sup = await sup_b.new_page(srv.url + "/supervisor")
            await sup.js("document.querySelector('#token').value = 'tokA-secret';"
                         "document.querySelector('#name').value = 'Alice';"
                         "document.querySelector('#login-form').requestSubmit()")
            await sup.wait(f"window.supervisor.calls.some(c => c.call_id === '{cid}')", 10, "the call in the list")
            await sup.js(f"document.querySelector('#calls tr[data-call=\"{cid}\"] button').click()")
            await sup.wait("document.querySelectorAll('#view .transcript li.caller').length > 0", 10,
                           "the call's transcript in the console")
            await sup.js("document.querySelector('#listen').click()")
            await sup.wait("window.supervisor.listening && window.supervisor.listen.loud > 5", 30,
                           "call audio measured in the console")

            # ---- whisper: the bot's next answer changes ---------------------------------------------
            n_before = await call.js("window.duplexbot.events.filter(e => e.type === 'bot_speech_start').length")
            await sup.js("document.querySelector('#whisper').value = 'We are closed today for a holiday.';"
                         "document.querySelector('#whisper-form').requestSubmit()")
            await sup.wait("/Whisper sent/.test(document.querySelector('#notice').textContent)", 5, "whisper sent")
            await call.wait(f"window.duplexbot.events.filter(e => e.type === 'bot_speech_start').length > {n_before}"
                            f" && /holiday/.test({bot_said('window.duplexbot.events')})", 45, "the whispered answer")
            await sup.wait(f"/holiday/.test({bot_said('window.supervisor.events')})", 10,
                           "the whispered answer in the console")
            assert "holiday" not in await call.js("document.querySelector('.transcript').textContent.replace("
                                                  "/We are closed today for a holiday\\./g, '')")

            # ---- take over, then hand back ----------------------------------------------------------
            await sup.js("document.querySelector('#takeover').click()")
            await sup.wait("window.supervisor.takenOver", 15, "take-over")
            session = rt.calls.get(cid)
            deadline = asyncio.get_running_loop().time() + 15
            while session.taken_over_by != "Alice@acme":  # the bot says the take-over notice first
                assert asyncio.get_running_loop().time() < deadline, "the supervisor never took the call"
                await asyncio.sleep(0.05)
            console = srv.app[__import__("bot.routes.supervisor", fromlist=["CONSOLE_KEY"]).CONSOLE_KEY]
            await sup.wait("true", 1)
            deadline = asyncio.get_running_loop().time() + 15
            while console.takeovers.get(cid) is None or console.takeovers[cid].frames < 25:
                assert asyncio.get_running_loop().time() < deadline, "no supervisor audio reached the call"
                await asyncio.sleep(0.1)
            # the caller hears the supervisor (the bot was cut when the take-over began)
            loud = await call.js("window.duplexbot.bot.loud")
            await call.wait(f"window.duplexbot.bot.loud > {loud} + 10", 15, "the supervisor's voice at the caller")
            await sup.screenshot(shots / "supervisor-console.png")
            await sup.js("document.querySelector('#takeover').click()")
            await sup.wait("!window.supervisor.takenOver", 10, "hand-back")
            assert session.taken_over_by is None

            # ---- another tenant sees nothing and cannot listen -----------------------------------
            other = await sup_b.new_page(srv.url + "/supervisor")
            await other.js("window.supervisor.login('tokB-secret', 'Bob')")
            await other.wait("document.querySelector('#link').textContent === 'Live' && "
                             "document.querySelector('#count').textContent === '0 live'", 10, "an empty call list")
            status = await other.js(f"window.supervisor.listen('{cid}').then(() => 200, e => e.status)")
            assert status == 403
            await other.screenshot(shots / "supervisor-other-tenant.png")

            latency = await call.js("JSON.parse(JSON.stringify(window.duplexbot.latency))")
            await call.js("document.querySelector('#hangup').click()")
            await sup.wait("/ended/.test(document.querySelector('#notice').textContent)", 15, "call end in console")
            for page in (call, sup):
                assert not page.errors, page.errors
            audits = await audit_entries(rt)
            actions = {(a["tenant"], a["action"]) for a in audits}
            for act in ("listen_start", "listen_stop", "whisper", "takeover_start", "takeover_stop"):
                assert ("acme", act) in actions, (act, actions)
            assert ("globex", "denied") in actions
            (shots / "audit.json").write_text(json.dumps(audits, indent=1))
            metrics = {"connect_ms": connect_ms, "latency_s": latency,
                       "listen_peak": await sup.js("window.supervisor.listen.peak")}
            (shots / "browser-metrics.json").write_text(json.dumps(metrics, indent=1))
    finally:
        await asyncio.gather(caller_b.close(), sup_b.close(), return_exceptions=True)
        await close_runtime(rt)
