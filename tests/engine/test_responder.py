"""Responders: the shipped YAML agent, config errors, and the OpenAI-compatible streaming client
against a local server that speaks the protocol (server-sent events)."""
import json

import pytest
import yaml
from aiohttp import web

from bot.brain import OpenAIChatResponder
from bot.services.responder import (
    AgentScript,
    ChatSettings,
    ConfigError,
    ResponderError,
    ScriptedAgent,
    Turn,
)
from bot.services.tts import SentenceBuffer


async def collect(gen):
    return [c async for c in gen]


async def test_scripted_agent_answers_faq_handoff_and_falls_back():
    agent = ScriptedAgent(AgentScript.load())
    assert "Duplex Demo Store" in agent.greeting()
    chunks = await collect(agent.respond([Turn("caller", "When are you open on Saturday?")], []))
    assert "Saturday" in chunks[0].text and chunks[-1].action is None
    chunks = await collect(agent.respond([Turn("caller", "Can I talk to a human please")], []))
    assert chunks[-1].action.name == "transfer" and chunks[-1].action.target.startswith("sip:")
    a = (await collect(agent.respond([Turn("caller", "purple elephants")], [])))[0].text
    b = (await collect(agent.respond([Turn("caller", "purple elephants")], [])))[0].text
    assert a != b  # fallbacks rotate
    # a supervisor whisper steers the next answer to a permitted line, never read aloud (tests/web/test_whisper.py)
    chunks = await collect(agent.respond([Turn("caller", "hours?")], ["Offer the caller a callback tomorrow."]))
    assert "call you back" in chunks[0].text and "Offer the caller" not in chunks[0].text
    assert agent.on_dtmf("0")[-1].action.name == "transfer" and agent.on_dtmf("5") == []


def test_agent_file_errors_are_clear(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text("name: x\ngreeting: hi\nfaq: [1]\nfallbacks: [ok]\n")
    with pytest.raises(ConfigError, match=r"faq\[0\]"):
        AgentScript.load(p)
    p.write_text("name: x\ngreeting: hi\nfallbacks: []\n")
    with pytest.raises(ConfigError, match="fallbacks"):
        AgentScript.load(p)
    p.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        AgentScript.load(p)
    with pytest.raises(ConfigError, match="cannot read"):
        AgentScript.load(tmp_path / "missing.yaml")


def test_sentence_buffer_releases_the_first_clause_early():
    b = SentenceBuffer()
    assert b.feed("Sure, I can") == []
    assert b.feed(" help with that, and then") == ["Sure, I can help with that,"]
    assert b.feed(" more. Next one") == ["and then more."]
    assert b.flush() == ["Next one"]


@pytest.fixture
async def chat_server(aiohttp_unused_port=None):
    seen = {}

    async def completions(request: web.Request):
        seen["auth"] = request.headers.get("Authorization")
        seen["body"] = await request.json()
        if seen["body"]["model"] == "broken":
            return web.json_response({"error": {"message": "overloaded"}}, status=503)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for piece in ["We open ", "at nine.", " See you", " soon."]:
            data = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            await resp.write(f"data: {json.dumps(data)}\n\n".encode())
        await resp.write(b"data: {malformed\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/v1", seen
    await runner.cleanup()


async def test_openai_compatible_streaming(chat_server):
    url, seen = chat_server
    r = OpenAIChatResponder(ChatSettings(base_url=url, model="tiny", api_key="k3y"), AgentScript.load())
    chunks = await collect(r.respond([Turn("caller", "When do you open?"), Turn("bot", "Hi")], ["Be brief."]))
    assert "".join(c.text for c in chunks) == "We open at nine. See you soon."
    assert seen["auth"] == "Bearer k3y" and seen["body"]["stream"] is True
    roles = [m["role"] for m in seen["body"]["messages"]]
    assert roles == ["system", "user", "assistant", "system"]
    bad = OpenAIChatResponder(ChatSettings(base_url=url, model="broken"), AgentScript.load())
    with pytest.raises(ResponderError) as e:
        await collect(bad.respond([Turn("caller", "hi")], []))
    assert e.value.retryable and "503" in str(e.value)
    down = OpenAIChatResponder(ChatSettings(base_url="http://127.0.0.1:9/v1", model="m", timeout=2),
                               AgentScript.load())
    with pytest.raises(ResponderError, match="unreachable"):
        await collect(down.respond([Turn("caller", "hi")], []))


async def test_tts_cache_prewarms_fixed_prompts_and_stays_bounded():
    import numpy as np

    from bot.services.tts import CachedTts

    class Counting:
        sample_rate = 24000

        def __init__(self):
            self.calls = []

        async def synthesize(self, text):
            self.calls.append(text)
            return np.full(10, len(text), np.float32)

    inner = Counting()
    tts = CachedTts(inner, max_entries=3)
    assert await tts.prewarm(["Hello there. How can I help?"]) == 2
    a = await tts.synthesize("Hello there.")
    assert a[0] == len("Hello there.") and inner.calls == ["Hello there.", "How can I help?"] and tts.hits == 1
    for t in ("one", "two", "three"):
        await tts.synthesize(t)
    assert len(tts._cache) == 3 and "How can I help?" not in tts._cache  # least recently used went first
    assert AgentScript.load().prompts()[0].startswith("Hello, thanks for calling")


def test_sentence_buffer_releases_a_sentence_when_it_ends_not_when_the_next_begins():
    b = SentenceBuffer()
    assert [b.feed(" " + w) for w in "Got it, on ECS.".split()] == [[], [], [], ["Got it, on ECS."]]
    assert b.feed(" It costs 3.") == [] and b.feed("5 dollars.") == ["It costs 3.5 dollars."]
    assert b.feed(" Ask Dr.") == [] and b.feed(" Smith today.") == ["Ask Dr. Smith today."]


def test_sentence_buffer_first_chunk_without_a_break_after_five_words():
    b = SentenceBuffer()
    out = [x for w in "We are open from nine in the morning to six.".split() for x in b.feed(" " + w)]
    assert out == ["We are open from nine", "in the morning to six."]


async def test_an_faq_answer_that_asks_for_a_number_declares_its_length(tmp_path):
    from bot.services.responder import ResponderAction
    base = "name: x\ngreeting: hi\nfallbacks: [ok]\nfaq:\n  - keywords: [order]\n    answer: Your order number?\n"
    agent = ScriptedAgent(AgentScript.from_dict(yaml.safe_load(base + "    expect_digits: 8\n")))
    chunks = await collect(agent.respond([Turn("caller", "Where is my order?")], []))
    assert [c.action for c in chunks if c.action] == [ResponderAction("expect_digits", "8")]
    p = tmp_path / "a.yaml"
    for bad in ("0", "33", "'8'", "true", "2.5"):
        p.write_text(base + f"    expect_digits: {bad}\n")
        with pytest.raises(ConfigError, match=r"faq\[0\]\.expect_digits must be a whole number of digits"):
            AgentScript.load(p)
    p.write_text(base + "    expect_digits: 8\n    action: hangup\n")
    with pytest.raises(ConfigError, match="both an action and expect_digits"):
        AgentScript.load(p)
