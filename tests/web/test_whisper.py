"""Whispers and stop requests in the responder layer, and the console's review of a whisper
(fake engine, plain HTTP). The browser side is tests/web/test_console.py."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiohttp import ClientSession, web

from bot.brain import OpenAIChatResponder
from bot.engine.port import CallInfo
from bot.routes import supervisor as supervisor_routes
from bot.services.responder import (
    AgentScript,
    ChatSettings,
    ConfigError,
    ScriptedAgent,
    Turn,
    is_stop_request,
)
from bot.supervisor import SupervisorSettings
from bot.transports.webrtc import WebRTCSettings

from .fakes import FakeRuntime, FakeSession
from .peer import Server

A = {"Authorization": "Bearer tokA-secret", "X-Supervisor-Name": "alice"}


async def said(agent, caller: str, whispers: list[str] | None = None) -> str:
    return " ".join(c.text for c in [c async for c in agent.respond([Turn("caller", caller)], whispers or [])])


async def test_a_whisper_steers_the_offline_agent_and_is_never_read_aloud():
    agent = ScriptedAgent(AgentScript.load())
    whisper = "Offer the caller free delivery"
    r = agent.review_whisper(whisper)
    assert r.accepted and r.say == "Good news: delivery is free on your order today." and r.say in r.effect
    text = await said(agent, "When are you open on Saturday?", [whisper])
    assert text.startswith(r.say) and "We're open" in text and whisper.lower() not in text.lower()
    assert "free" not in await said(agent, "When are you open on Saturday?")  # used once
    # a question the agent cannot answer: the whisper's line instead of a fallback
    assert await said(agent, "And what about tomorrow?", [whisper]) == r.say
    # a whisper naming an FAQ topic gives that answer next
    r = agent.review_whisper("tell them about returns")
    assert r.accepted and "thirty days" in r.say and "returns answer" in r.effect
    # one it cannot follow is refused with the reason, and dropped if it reaches the agent anyway
    r = agent.review_whisper("Be extra polite with this one")
    assert not r.accepted and not r.say
    assert "no language model" in r.effect and "never reads a whisper aloud" in r.effect and "free delivery" in r.effect
    assert "polite" not in await said(agent, "When are you open?", ["Be extra polite with this one"])
    # an FAQ answer that starts an action (card payment) is not a whisper target
    assert not agent.review_whisper("mention card payment").accepted


@pytest.mark.parametrize("text", ["Wait, stop.", "Wait. Stop!", "Hold on.", "one moment please", "Stop it.",
                                  "No, no, wait.", "Sorry, hang on a second"])
def test_stop_requests(text):
    assert is_stop_request(text, AgentScript.load().stop_phrases)


@pytest.mark.parametrize("text", ["Wait, what are your opening hours?", "Stop the delivery please", "Okay.", ""])
def test_not_stop_requests(text):
    assert not is_stop_request(text, AgentScript.load().stop_phrases)


async def test_a_stop_request_gets_sure_and_keeps_the_whisper_for_the_next_answer():
    agent = ScriptedAgent(AgentScript.load())
    assert await said(agent, "Wait, stop.", ["Offer the caller free delivery"]) == "Sure."
    assert (await said(agent, "Where is the store?")).startswith("Good news: delivery is free")
    silent = ScriptedAgent(AgentScript.from_dict({"name": "x", "greeting": "hi", "fallbacks": ["what?"],
                                                  "stop_requests": {"phrases": ["stop"], "say": ""}}))
    assert [c async for c in silent.respond([Turn("caller", "stop")], [])] == []
    with pytest.raises(ConfigError, match="whisper_phrases"):
        AgentScript.from_dict({"name": "x", "greeting": "hi", "fallbacks": ["?"], "whisper_phrases": [{"say": "x"}]})


def test_a_language_model_gets_the_whisper_as_a_system_instruction():
    r = OpenAIChatResponder(ChatSettings(base_url="http://127.0.0.1:9/v1", model="m"), AgentScript.load())
    assert r.review_whisper("be polite").accepted
    msgs = r._messages([Turn("caller", "hours?")], ["Offer the caller free delivery"])
    assert [m["role"] for m in msgs] == ["system", "user", "system"]
    assert "Offer the caller free delivery" in msgs[-1]["content"] and "never read them out" in msgs[-1]["content"]
    assert all("free delivery" not in m["content"] for m in msgs if m["role"] != "system")


async def test_the_console_refuses_a_whisper_the_agent_cannot_follow():
    rt = FakeRuntime(SimpleNamespace(supervisor=SupervisorSettings(tokens=(("acme", "tokA-secret"),)),
                                     webrtc=WebRTCSettings(tenant="acme")))
    info = CallInfo(call_id="c1", transport="webrtc", caller="browser", callee="web", tenant="acme")
    session = FakeSession(SimpleNamespace(info=info), rt.calls)
    rt.calls.sessions["c1"] = session
    app = web.Application()
    supervisor_routes.setup(app, rt)
    async with Server(app) as srv, ClientSession() as http:
        url = srv.url + "/supervisor/api/calls/c1/whisper"
        async with http.post(url, json={"text": "Be extra polite with this one"}, headers=A) as r:
            assert r.status == 422 and "no language model" in (await r.json())["error"]
        assert session.whispers == []
        async with http.post(url, json={"text": "Offer the caller free delivery"}, headers=A) as r:
            assert r.status == 200
            assert "Good news: delivery is free" in (await r.json())["effect"]
        assert session.whispers == [("Offer the caller free delivery", "alice@acme")]
    assert [a["action"] for a in rt.state.audits] == ["whisper_refused", "whisper"]
