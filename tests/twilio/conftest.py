"""A Twilio route set on 127.0.0.1 with a fake engine (no models), and a fake Twilio REST API."""
from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from bot.audio.frame import AudioFrame
from bot.engine.port import Hangup
from bot.routes.twilio import install
from bot.transports.twilio.settings import TwilioSettings

AUTH = "0123456789abcdef0123456789abcdef"
ACCOUNT = "AC" + "f" * 32


class ToneSource:
    """A BotAudioSource with `seconds` of 440 Hz tone queued by `speak()`."""

    def __init__(self) -> None:
        self.remaining = 0
        self.position = 0
        self.played = 0
        self.confirms: list[int] = []
        self.reads = 0
        self.rate: int | None = None  # the rate the transport reads at (learnt on the first read)

    def speak(self, seconds: float) -> None:
        self.remaining += int(seconds * (self.rate or 8000))

    def stop(self) -> None:
        self.remaining = 0

    def read(self, samples: int, sample_rate: int) -> AudioFrame:
        if self.rate is None:
            self.rate = sample_rate
            self.remaining = self.remaining * sample_rate // 8000
        assert sample_rate == self.rate
        self.reads += 1
        n = min(samples, self.remaining)
        t = (self.position + np.arange(samples)) / sample_rate
        pcm = (6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        pcm[n:] = 0
        self.remaining -= n
        frame = AudioFrame(pcm, sample_rate, self.position / sample_rate)
        self.position += samples
        return frame

    def bursts_play_at_once(self) -> None:
        self.rebased = True

    def confirm_played(self, samples_played: int) -> None:
        self.confirms.append(samples_played)
        self.played = max(self.played, samples_played)

    def is_speaking(self) -> bool:
        return self.remaining > 0


@dataclass
class FakeEngine:
    """Stands in for `runtime.calls.run`: records what the transport delivers."""
    items: dict[str, list] = field(default_factory=dict)
    transports: dict[str, object] = field(default_factory=dict)
    sources: dict[str, ToneSource] = field(default_factory=dict)
    ended: dict[str, asyncio.Event] = field(default_factory=dict)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    greeting: float = 0.0

    async def run(self, transport) -> None:
        cid = transport.info.call_id
        self.items[cid] = []
        self.ended[cid] = asyncio.Event()
        self.transports[cid] = transport
        src = self.sources[cid] = ToneSource()
        src.speak(self.greeting)
        transport.start_output(src)
        self.started.set()
        try:
            while True:
                item = await asyncio.wait_for(transport.receive(), 30)
                self.items[cid].append(item)
                if isinstance(item, Hangup):
                    break
        finally:
            self.ended[cid].set()

    def frames(self, cid: str) -> list[AudioFrame]:
        return [i for i in self.items.get(cid, []) if isinstance(i, AudioFrame)]


@dataclass
class Server:
    base: str
    engine: FakeEngine
    service: object
    settings: TwilioSettings


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


@dataclass
class FakeTwilioApi:
    """What api.twilio.com checks: path, basic auth, form fields. Records every accepted request."""
    base: str = ""
    requests: list[dict] = field(default_factory=list)
    fail_with: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls.json", self.create)
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls/{call}.json", self.update)
        return app

    def _check_auth(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(f"{ACCOUNT}:{AUTH}".encode()).decode()
        if request.match_info["account"] != ACCOUNT or auth != want:
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        if request.content_type != "application/x-www-form-urlencoded":
            return web.json_response({"code": 20001, "message": "form encoding expected", "status": 400}, status=400)
        if self.fail_with:
            return web.json_response({"code": 20500, "message": "Internal", "status": self.fail_with},
                                     status=self.fail_with)
        return None

    async def create(self, request: web.Request) -> web.Response:
        if (bad := self._check_auth(request)) is not None:
            return bad
        form = dict(await request.post())
        if not {"To", "From", "Url"} <= form.keys():
            return web.json_response({"code": 21205, "message": "Url parameter is required.", "status": 400},
                                     status=400)
        self.requests.append({"op": "create", "path": request.path, **form})
        return web.json_response({"sid": "CA" + "e" * 32, "status": "queued", "to": form["To"], "from": form["From"]},
                                 status=201)

    async def update(self, request: web.Request) -> web.Response:
        if (bad := self._check_auth(request)) is not None:
            return bad
        form = dict(await request.post())
        if "Twiml" not in form and "Url" not in form and "Status" not in form:
            return web.json_response({"code": 21218, "message": "Invalid parameter", "status": 400}, status=400)
        self.requests.append({"op": "update", "path": request.path, "call": request.match_info["call"], **form})
        return web.json_response({"sid": request.match_info["call"], "status": "in-progress"})


@pytest.fixture
async def twilio_api():
    api = FakeTwilioApi()
    runner, api.base = await _serve(api.app())
    yield api
    await runner.cleanup()


@pytest.fixture
async def server(twilio_api):
    engine = FakeEngine()
    app = web.Application()
    # the public URL Twilio uses is not the address we listen on: signatures must use the former
    settings = TwilioSettings(auth_token=AUTH, account_sid=ACCOUNT, public_base_url="https://bot.example.com",
                              api_base=twilio_api.base, caller_id="+15550009999", start_timeout=2.0)
    svc = install(app, settings, engine.run)
    runner, base = await _serve(app)
    yield Server(base, engine, svc, settings)
    await runner.cleanup()
    leaked = [t for t in asyncio.all_tasks() if t.get_name().startswith("twilio-") and not t.done()]
    assert not leaked, f"tasks leaked: {leaked}"


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s
