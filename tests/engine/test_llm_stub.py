"""The OpenAI-compatible stub (bot/bench/llm_stub.py): timing of the stream, tool-call deltas,
errors, a malformed event, the request log, a client that hangs up mid-stream, and the bot's own
chat responder reading it."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.bench.llm_stub import LlmStub, StubReply, StubSettings, StubToolCall, default_reply


@pytest.fixture
async def stub() -> AsyncIterator[LlmStub]:
    s = LlmStub(StubSettings(ttft=0.0, words_per_second=50.0))
    await s.start()
    yield s
    await s.stop()


def body(text: str = "What are your opening hours?", stream: bool = True) -> dict[str, Any]:
    return {"model": "m", "stream": stream, "messages": [{"role": "system", "content": "be brief"},
                                                         {"role": "user", "content": text}]}


async def events(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[float, str]]:
    """(arrival time, data) of each `data:` line."""
    async for raw in resp.content:
        line = raw.decode().strip()
        if line.startswith("data:"):
            yield time.monotonic(), line[5:].strip()


async def collect(url: str, payload: dict[str, Any]) -> tuple[int, list[tuple[float, str]], float]:
    async with aiohttp.ClientSession() as http:
        t0 = time.monotonic()
        async with http.post(url + "/chat/completions", json=payload) as r:
            return r.status, [e async for e in events(r)], t0


def content(evs: list[tuple[float, str]]) -> list[tuple[float, str]]:
    out = []
    for t, d in evs:
        if d == "[DONE]":
            continue
        try:
            piece = json.loads(d)["choices"][0]["delta"].get("content")
        except ValueError:
            continue
        if piece:
            out.append((t, piece))
    return out


async def test_stream_honours_time_to_first_token_and_rate(stub: LlmStub) -> None:
    stub.set_settings(StubSettings(ttft=0.3, words_per_second=20.0))
    text = "one two three four five six seven eight nine ten"
    stub.reply = lambda messages: StubReply(text)
    status, evs, t0 = await collect(stub.base_url, body())
    assert status == 200 and evs[-1][1] == "[DONE]"
    words = content(evs)
    assert "".join(w for _, w in words) == text
    first, last = words[0][0] - t0, words[-1][0] - t0
    assert 0.3 <= first < 0.3 + 0.15
    assert last - first == pytest.approx(9 / 20.0, abs=0.12)  # ten words at 20 words/s
    final = json.loads(evs[-2][1])["choices"][0]
    assert final["finish_reason"] == "stop" and final["delta"] == {}


async def test_default_reply_is_a_short_answer_on_topic(stub: LlmStub) -> None:
    _, evs, _ = await collect(stub.base_url, body("How long does delivery take?"))
    text = "".join(w for _, w in content(evs))
    assert "delivery" in text.lower() and 15 <= len(text.split()) <= 25
    for q in ("Can I return a broken kettle?", "Where is the store?", "Tell me a joke", "Is it open on Sunday?"):
        assert 15 <= len(default_reply([{"role": "user", "content": q}]).text.split()) <= 25


async def test_tool_call_deltas_parse_back_to_name_and_arguments(stub: LlmStub) -> None:
    calls = (StubToolCall("lookup_order", json.dumps({"order": "A-1234", "detail": "status"})),
             StubToolCall("transfer", '{"to": "billing"}'))
    stub.reply = lambda messages: StubReply("Let me check.", tool_calls=calls)
    status, evs, _ = await collect(stub.base_url, body())
    assert status == 200
    got: dict[int, dict[str, str]] = {}
    pieces, finish = 0, None
    for _, d in evs:
        if d == "[DONE]":
            break
        choice = json.loads(d)["choices"][0]
        finish = choice["finish_reason"] or finish
        for tc in choice["delta"].get("tool_calls", []):
            slot = got.setdefault(tc["index"], {"id": "", "name": "", "arguments": ""})
            slot["id"] = tc.get("id") or slot["id"]
            fn = tc.get("function", {})
            slot["name"] += fn.get("name") or ""
            slot["arguments"] += fn.get("arguments") or ""
            pieces += bool(fn.get("arguments"))
    assert finish == "tool_calls"
    assert [(got[k]["name"], got[k]["arguments"]) for k in sorted(got)] == [(c.name, c.arguments) for c in calls]
    assert got[0]["id"] != got[1]["id"] and pieces >= 4  # arguments split over several events
    assert "".join(w for _, w in content(evs)) == "Let me check."


async def test_error_status_answers_json(stub: LlmStub) -> None:
    stub.reply = lambda messages: StubReply(status=503)
    async with aiohttp.ClientSession() as http:
        async with http.post(stub.base_url + "/chat/completions", json=body()) as r:
            assert r.status == 503
            err = (await r.json())["error"]
    assert err["code"] == 503 and err["type"] == "server_error" and err["message"]


async def test_malformed_event_mid_stream(stub: LlmStub) -> None:
    stub.reply = lambda messages: StubReply("alpha beta gamma delta", malformed=True)
    _, evs, _ = await collect(stub.base_url, body())
    bad = []
    for i, (_, d) in enumerate(evs):
        try:
            json.loads(d) if d != "[DONE]" else None
        except ValueError:
            bad.append(i)
    assert len(bad) == 1 and 0 < bad[0] < len(evs) - 2  # mid-stream, not first or last
    assert "".join(w for _, w in content(evs)) == "alpha beta gamma delta"


async def test_requests_are_recorded_in_order(stub: LlmStub) -> None:
    for q in ("first question", "second question"):
        await collect(stub.base_url, body(q))
    async with aiohttp.ClientSession() as http:
        async with http.post(stub.base_url + "/chat/completions", json=body("third", stream=False)) as r:
            whole = await r.json()
        async with http.get(stub.base_url + "/models") as r:
            models = await r.json()
    assert [b["messages"][-1]["content"] for b in stub.requests] == ["first question", "second question", "third"]
    assert stub.requests[0]["stream"] is True and stub.requests[2]["stream"] is False
    assert whole["object"] == "chat.completion" and whole["choices"][0]["finish_reason"] == "stop"
    assert whole["choices"][0]["message"]["content"] == default_reply(stub.requests[2]["messages"]).text
    assert models["data"][0]["id"]


async def test_non_streamed_tool_call(stub: LlmStub) -> None:
    stub.reply = lambda messages: StubReply(tool_calls=(StubToolCall("book", '{"day": "Tuesday"}'),))
    async with aiohttp.ClientSession() as http:
        async with http.post(stub.base_url + "/chat/completions", json=body(stream=False)) as r:
            choice = (await r.json())["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "book", "arguments": '{"day": "Tuesday"}'}


async def test_client_gone_mid_stream_leaves_nothing_behind(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    before = asyncio.all_tasks()
    stub = LlmStub(StubSettings(ttft=0.0, words_per_second=0.5))  # a word every 2 s
    stub.reply = lambda messages: StubReply(" ".join(["word"] * 20))
    await stub.start()
    async with aiohttp.ClientSession() as http:
        r = await http.post(stub.base_url + "/chat/completions", json=body())
        async for _ in events(r):
            break  # the first word: the stream is under way
        assert stub.in_flight == 1
        r.close()  # hang up
        t = time.monotonic()
        await asyncio.wait_for(stub.idle(), 2.0)
        assert time.monotonic() - t < 1.0  # cancelled at once, not when its next word is due
    await stub.stop()
    assert not {t for t in asyncio.all_tasks() - before if not t.done()} - {asyncio.current_task()}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_bots_chat_responder_reads_the_stub(stub: LlmStub) -> None:
    from bot.brain import OpenAIChatResponder
    from bot.services.responder import AgentScript, ChatSettings, Turn

    stub.reply = lambda messages: StubReply("We open at nine.", malformed=True)
    r = OpenAIChatResponder(ChatSettings(base_url=stub.base_url, model="m"), AgentScript.load())
    text = "".join([c.text async for c in r.respond([Turn("caller", "When do you open?")], [])])
    assert text == "We open at nine."
    assert stub.requests[-1]["messages"][-1] == {"role": "user", "content": "When do you open?"}
