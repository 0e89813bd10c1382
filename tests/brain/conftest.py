"""A local webhook server on 127.0.0.1 for tool tests, and the OpenAI-compatible stub."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import pytest
from aiohttp import web

from bot.bench.llm_stub import LlmStub, StubSettings


@dataclass
class Hooks:
    url: str = ""
    port: int = 0
    hits: dict[str, list[Any]] = field(default_factory=dict)
    fail_first: int = 0  # /flaky answers 500 this many times
    delay: float = 0.0  # /slow sleeps this long

    def count(self, path: str) -> int:
        return len(self.hits.get(path, []))


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    h = Hooks()

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        body = await request.json() if request.can_read_body else dict(request.query)
        h.hits.setdefault(path, []).append(body)
        if path == "/flaky" and h.count(path) <= h.fail_first:
            return web.json_response({"error": "busy"}, status=500)
        if path == "/bad":
            return web.json_response({"error": "no such order"}, status=404)
        if path == "/slow":
            await asyncio.sleep(h.delay)
        if path == "/long":
            return web.Response(text="x" * 10_000)
        if path == "/card":
            return web.json_response({"card": "4111 1111 1111 1111", "status": "ok"})
        return web.json_response({"order": body.get("order_id", ""), "status": "out for delivery"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    h.port = int(runner.addresses[0][1])
    h.url = f"http://127.0.0.1:{h.port}"
    yield h
    await runner.cleanup()


@pytest.fixture
async def stub() -> AsyncIterator[LlmStub]:
    s = LlmStub(StubSettings(ttft=0.0, words_per_second=400.0))
    await s.start()
    yield s
    await s.stop()
