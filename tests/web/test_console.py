"""Headless Chromium against the real engine: the call page with its tenant from the URL, and the
supervisor console of that tenant. Checks what issue 15 found broken in the pages: the Time column
ticks, take-over and hand-back are stamped with their own call time, decisions read as words (no
raw names, no probability shown as caller words), "Call ended" appears, empty states are one line,
and a whisper steers the offline agent or is refused with its reason, never read aloud.
Screenshots go to test-artifacts/."""
from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from .cdp import CHROMIUM, Browser, artifacts_dir
from .peer import Server
from .test_engine import close_runtime
from .voices import wav_file

pytestmark = [pytest.mark.peer, pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed")]

RAW = re.compile(r"p\(\w+\)|p=0\.|barge_in|takeover\b|[“\"]p\(")
# every visible empty state and how many lines it takes (it wrapped word by word: 3-4 lines)
EMPTY_LINES = ("Array.from(document.querySelectorAll('li.empty, p.empty, div.empty')).filter(e => e.offsetParent)"
               ".map(e => { const cs = getComputedStyle(e); return [e.textContent, (e.clientHeight - "
               "parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom)) / parseFloat(cs.lineHeight)]; })")
BOT_SAID = "window.supervisor.events.filter(e => e.type === 'bot_speech_start').map(e => e.text).join(' | ')"
TIMELINE = "document.querySelector('#view .timeline').textContent"


def stamps(label: str) -> str:
    return (f"Array.from(document.querySelectorAll('#view .timeline li')).filter(li => "
            f"li.textContent.includes('{label}')).map(li => li.querySelector('.t').textContent)")


def seconds(clock: str) -> float:
    m, s = clock.split(":")
    return 60 * int(m) + float(s)


async def test_console_and_call_page(tmp_path: Path, monkeypatch):
    shots = artifacts_dir()
    caller_wav = wav_file(tmp_path / "caller.wav", [("", 8.0), ("What are your opening hours?", 16.0),
                                                     ("Where is your store?", 60.0)])
    sup_wav = wav_file(tmp_path / "supervisor.wav", [("Hello, this is Alice.", 0.5)])
    monkeypatch.setenv("DUPLEXBOT_SUPERVISOR_TOKENS", "acme:tokA-secret,globex:tokB-secret")
    monkeypatch.delenv("DUPLEXBOT_WEBRTC_TENANT", raising=False)  # the page names its tenant
    from bot.runtime import Runtime
    from bot.server import build_app
    from bot.settings import Settings

    rt = await Runtime.start(Settings.for_tests())
    caller_b, sup_b = Browser(caller_wav, "caller"), Browser(sup_wav, "supervisor")
    try:
        async with Server(build_app(rt)) as srv:
            await asyncio.gather(caller_b.start(), sup_b.start())
            # ---- the supervisor first: empty states read as one line --------------------------------
            sup = await sup_b.new_page(srv.url + "/supervisor")
            await sup.js("window.supervisor.login('tokA-secret', 'Alice')")
            await sup.wait("document.querySelector('#link').textContent === 'Live'", 10, "the console to connect")
            empties = await sup.js(EMPTY_LINES)
            assert empties and all(lines < 1.5 for _, lines in empties), empties
            await sup.screenshot(shots / "console-empty.png")

            # ---- the call page: an unknown tenant is refused, ?tenant=acme goes to acme -------------
            call = await caller_b.new_page(srv.url + "/?tenant=initech")
            await call.wait("/Unknown tenant/.test(document.querySelector('#error').textContent)", 10,
                            "the unknown tenant refused")
            empties = await call.js(EMPTY_LINES)
            assert len(empties) == 2 and all(lines < 1.5 for _, lines in empties), empties
            await call.goto(srv.url + "/?tenant=acme")
            await call.wait("document.querySelector('#tenant').value === 'acme'", 10, "the tenant from the URL")
            await call.js("document.querySelector('#call').click()")
            await call.wait("window.duplexbot.connected && window.duplexbot.tenant === 'acme'", 15, "the call")
            cid = await call.js("window.duplexbot.callId")
            assert rt.calls.get(cid).info.tenant == "acme"

            # ---- the supervisor sees it; the Time column ticks --------------------------------------
            row = f"#calls tr[data-call=\"{cid}\"]"
            await sup.wait(f"!!document.querySelector('{row}')", 10, "the call in acme's list")
            first = await sup.js(f"document.querySelector('{row} td.age').textContent")
            await sup.wait(f"document.querySelector('{row} td.age').textContent !== '{first}'", 4, "the Time to tick")
            await sup.js(f"document.querySelector('{row} button').click()")
            await sup.wait("window.supervisor.events.some(e => e.type === 'call_started')", 10, "the call's events")

            # ---- a whisper it cannot follow is refused; one it can steers the next answer -----------
            await sup.js("document.querySelector('#whisper').value = 'Be extra polite with this one';"
                         "document.querySelector('#whisper-form').requestSubmit()")
            await sup.wait("/no language model/.test(document.querySelector('#error').textContent)", 10,
                           "the refusal and its reason")
            await sup.screenshot(shots / "console-whisper-refused.png")
            await sup.wait(f"/nine/.test({BOT_SAID})", 40, "the hours answer")
            await sup.js("document.querySelector('#whisper').value = 'Offer the caller free delivery';"
                         "document.querySelector('#whisper-form').requestSubmit()")
            await sup.wait("/Good news: delivery is free/.test(document.querySelector('#notice').textContent)", 10,
                           "the whisper's effect")
            try:
                await sup.wait("window.supervisor.events.some(e => e.type === 'transcript_final' "
                               "&& e.speaker === 'bot' "
                               "&& /^Good news: delivery is free.*Harbour Street/.test(e.text))", 50,
                               "the steered answer")
            except TimeoutError as e:  # say what the bot heard and said instead
                raise AssertionError(await sup.js("JSON.stringify(window.supervisor.events.filter(e => e.t > 20)"
                                                  ".map(e => [e.type, e.t, e.text || e.reason || '']))")) from e
            said = await sup.js(BOT_SAID)
            assert "offer the caller" not in said.lower() and "polite" not in said.lower(), said
            heard = await call.js("document.querySelector('.transcript').textContent")
            assert "Offer the caller" not in heard and "(whisper)" not in heard
            await sup.wait("(() => { const ev = window.supervisor.events; const s = ev.filter(e => e.type === "
                           "'bot_speech_start').at(-1); return ev.some(e => e.type === 'bot_speech_stop' && "
                           "e.turn === s.turn); })()", 30, "the answer to end")

            # ---- take-over and hand-back carry their own call time --------------------------------
            start = await sup.js("window.supervisor.events.at(-1).t")  # before: the bot now says a notice first
            await sup.js("document.querySelector('#takeover').click()")
            await sup.wait("window.supervisor.takenOver", 15, "take-over")
            await sup.wait("document.querySelector('#view .timeline').textContent.includes('Take-over')", 5, "mark")
            took = seconds((await sup.js(stamps("Take-over")))[-1])
            deadline = asyncio.get_running_loop().time() + 10
            while rt.calls.get(cid).now < took + 2.0:  # two seconds of call time, by the engine's clock
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            await sup.screenshot(shots / "console-takeover.png")
            await sup.js("document.querySelector('#takeover').click()")
            await sup.wait("!window.supervisor.takenOver", 10, "hand-back")
            back = seconds((await sup.js(stamps("Hand-back")))[-1])
            assert took >= start - 0.05 and back - took >= 1.8, (start, took, back)

            # ---- decisions read as words --------------------------------------------------------------
            for page, sel in ((sup, "#view .timeline"), (call, ".timeline")):
                text = await page.js(f"document.querySelector('{sel}').textContent")
                assert not RAW.search(text), text
            # ---- the end: "Call ended" in the console --------------------------------------------------
            await call.screenshot(shots / "call-page-tenant.png")
            await call.js("document.querySelector('#hangup').click()")
            await sup.wait(f"{TIMELINE}.includes('Call ended')", 15, "Call ended in the console")
            assert "the caller hung up" in await sup.js(TIMELINE)
            await sup.screenshot(shots / "console-call-ended.png")
            for page in (call, sup):
                assert not page.errors, page.errors
    finally:
        await asyncio.gather(caller_b.close(), sup_b.close(), return_exceptions=True)
        await close_runtime(rt)
