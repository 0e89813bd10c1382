"""A local OpenAI-compatible chat server with a set time to first token and speaking rate, for
tests and `duplexbot bench brain` (and `duplexbot llm-stub` by hand).

`POST /v1/chat/completions` answers what `reply(messages)` returns: streamed (`stream: true`) as
server-sent events in OpenAI's chunk layout (`data: {...}` lines, then `data: [DONE]`), the first
word `ttft` seconds after the request arrived and each further word `1 / words_per_second` after
the one before (on an absolute schedule, so the loop's own delays do not add up); tool calls as
`delta.tool_calls` (index, id, name, then the arguments split over several events, finish_reason
"tool_calls"). A request without `stream` gets one JSON completion after the time the stream would
have taken. `GET /v1/models` lists the one model. Every request body is kept in `requests`.

A client that goes away mid-stream cancels its handler (aiohttp `handler_cancellation`): no task
sleeps on for a listener that is gone and nothing is logged as an error; `idle()` waits until no
request is in flight. Why 12 words/s by default: a hosted model streams 30-100 tokens/s, a small
local one on two cores about 10; 12 words/s is the slower, more telling end that the issue's
measurements used (400 ms to first token, 12 words/s).
"""
from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web

MODEL = "duplexbot-stub"


@dataclass(frozen=True)
class StubToolCall:
    name: str
    arguments: str  # JSON text


@dataclass(frozen=True)
class StubReply:
    text: str = ""  # streamed word by word
    tool_calls: tuple[StubToolCall, ...] = ()  # streamed as `delta.tool_calls`, finish_reason "tool_calls"
    status: int = 200  # not 200: that status with a JSON error body
    malformed: bool = False  # a `data:` event that is not JSON, half-way through the stream


@dataclass(frozen=True)
class StubSettings:
    ttft: float = 0.0  # seconds from the request to the first token
    words_per_second: float = 12.0


# ------------------------------------------------------------------ the default answers

_ANSWERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("hour", "open", "close", "saturday", "sunday", "weekend", "today"),
     "We are open from nine in the morning to six in the evening on weekdays, and from ten to four on Saturdays."),
    (("deliver", "shipping", "arrive", "order", "parcel"),
     "Standard delivery takes three to five working days, and orders over fifty pounds are delivered free of charge."),
    (("return", "refund", "broken", "exchange", "faulty"),
     "You can return any item within thirty days with the receipt, and we refund faulty goods in full."),
    (("where", "address", "store", "located", "find", "park"),
     "Our store is on the high street next to the train station, with free parking behind the building."),
    (("price", "cost", "much", "offer", "discount", "sale", "cheap"),
     "Prices are on our website, and this week there is twenty percent off all garden furniture and tools."),
)
_GENERIC = ("Thanks for asking. I can help with opening hours, delivery, returns and prices. "
            "What would you like to know?")


def default_reply(messages: list[dict[str, Any]]) -> StubReply:
    """A short store agent's answer (15-25 words) to the last user message, chosen by keywords."""
    last = next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")
    words = set(re.findall(r"[a-z]+", last.lower()))
    for keys, answer in _ANSWERS:
        if any(w.startswith(k) for w in words for k in keys):
            return StubReply(answer)
    return StubReply(_GENERIC)


def _pieces(text: str, n: int = 3) -> list[str]:
    """`text` cut into about `n` consecutive pieces (a client must join tool arguments itself)."""
    if not text:
        return [""]
    step = max(1, -(-len(text) // n))
    return [text[i:i + step] for i in range(0, len(text), step)]


# ------------------------------------------------------------------ the server

class LlmStub:
    def __init__(self, settings: StubSettings = StubSettings(),
                 reply: Callable[[list[dict[str, Any]]], StubReply] | None = None, *,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings = settings
        self.reply = reply or default_reply
        self.host, self.port = host, port
        self.requests: list[dict[str, Any]] = []  # every request body received, in order
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def set_settings(self, s: StubSettings) -> None:
        """New timing for requests from now on (one in flight keeps the timing it started with)."""
        self.settings = s

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the port bound (port 0: any free one)
        self.base_url = f"http://{self.host}:{self.port}/v1"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def idle(self) -> None:
        """Returns once no request is being answered (a cancelled one counts as answered)."""
        await self._idle.wait()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    # -------------------------------------------------------------- handlers

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0,
                                                              "owned_by": "duplexbot"}]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        t0 = time.monotonic()
        settings = self.settings
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the request body is not JSON", "invalid_request_error")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "the request needs a `messages` list", "invalid_request_error")
        self.requests.append(body)
        self._in_flight += 1
        self._idle.clear()
        try:
            reply = self.reply(body["messages"])
            if reply.status != 200:
                await _sleep_until(t0 + settings.ttft)
                return _error(reply.status, f"stub error {reply.status}",
                              "server_error" if reply.status >= 500 else "invalid_request_error")
            model = str(body.get("model") or MODEL)
            if body.get("stream"):
                return await self._stream(request, reply, settings, model, t0)
            return await self._whole(reply, settings, model, t0)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _whole(self, reply: StubReply, s: StubSettings, model: str, t0: float) -> web.Response:
        words = reply.text.split()
        await _sleep_until(t0 + s.ttft + max(len(words) - 1, 0) / s.words_per_second)
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [{"id": f"call_{k}", "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments}}
                                     for k, c in enumerate(reply.tool_calls)]
        return web.json_response({
            "id": "chatcmpl-" + secrets.token_hex(8), "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": message,
                                         "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": len(words), "total_tokens": len(words)}})

    async def _stream(self, request: web.Request, reply: StubReply, s: StubSettings, model: str,
                      t0: float) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        cid, created = "chatcmpl-" + secrets.token_hex(8), int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            event = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"

        # every piece after the first token, in order: content words, then each tool call's header
        # and its argument pieces; the i-th goes out at t0 + ttft + i / wps
        words = reply.text.split()
        events: list[bytes] = [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
        for k, call in enumerate(reply.tool_calls):
            events.append(chunk({"tool_calls": [{"index": k, "id": f"call_{k}", "type": "function",
                                                 "function": {"name": call.name, "arguments": ""}}]}))
            events += [chunk({"tool_calls": [{"index": k, "function": {"arguments": p}}]})
                       for p in _pieces(call.arguments)]
        if reply.malformed:
            events.insert(len(events) // 2, b'data: {"choices": [{"delta": {"content": \n\n')
        try:
            for i, ev in enumerate(events or [b""]):
                await _sleep_until(t0 + s.ttft + i / s.words_per_second)
                await resp.write((chunk({"role": "assistant", "content": ""}) if i == 0 else b"") + ev)
            await resp.write(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except ConnectionResetError:  # the client went away between two events
            pass
        return resp


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "code": status}}, status=status)


async def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def serve(settings: StubSettings, host: str, port: int) -> None:
    """Run a stub until cancelled (`duplexbot llm-stub`)."""
    stub = LlmStub(settings, host=host, port=port)
    url = await stub.start()
    print(f"OpenAI-compatible stub on {url} (ttft {settings.ttft} s, {settings.words_per_second} words/s); "
          f"point the bot at it with DUPLEXBOT_LLM_BASE_URL={url} DUPLEXBOT_LLM_MODEL={MODEL}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await stub.stop()
