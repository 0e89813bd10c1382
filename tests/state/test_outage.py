"""The store goes away under live calls: /healthz tells, nothing held in memory is lost, the
embedded server comes back by itself, and its data outlives the bot.

The runtime here is the real one (`Runtime.start` + `bot.server.build_app`, its /healthz on a real
port); calls are driven through `runtime.state` the way `CallManager` drives them, and the engine's
events are emitted into it at about 50 per second per call."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from typing import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from bot.engine.events import CallerSpeechStart, EndOfTurn
from bot.engine.port import CallInfo
from bot.state import counters
from bot.state.embedded import DataDirInUse, EmbeddedValkey
from bot.state.health import StoreStatus
from bot.state.supervise import Backoff

from .conftest import wait_for

pytestmark = pytest.mark.timeout(120)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALLS = [f"out-{i}" for i in range(4)]


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


@pytest.fixture
def env(tmp_path, monkeypatch):
    for name in ("REDIS_URL", "DUPLEXBOT_VALKEY_DIR", "DUPLEXBOT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DUPLEXBOT_RUNTIME_FILE", str(tmp_path / "rt.json"))
    return monkeypatch


class Bot:
    """The real runtime and HTTP app, on the settings' port."""

    def __init__(self, settings):
        self.settings = settings

    async def __aenter__(self) -> "Bot":
        from bot.runtime import Runtime
        from bot.server import build_app

        self.rt = await Runtime.start(self.settings)
        self.runner = web.AppRunner(build_app(self.rt), handle_signals=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.settings.http.port).start()
        self.http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.close()
        await self.runner.cleanup()
        await self.rt.close()

    async def health(self) -> tuple[int, dict]:
        async with self.http.get(f"http://127.0.0.1:{self.settings.http.port}/healthz",
                                 timeout=aiohttp.ClientTimeout(total=3)) as r:
            return r.status, await r.json()

    async def wait_health(self, status: int, deadline: float, what: str) -> float:
        """Poll /healthz until it answers `status`; returns when (loop time)."""
        loop = asyncio.get_running_loop()
        while True:
            code, body = await self.health()
            if code == status:
                return loop.time()
            if loop.time() > deadline:
                raise AssertionError(f"/healthz still {code} {body} waiting for {what}")
            await asyncio.sleep(0.05)


class Callers:
    """Four live calls, each emitting an event every 20 ms until stopped."""

    def __init__(self, store):
        self.store = store
        self.sent = {c: 0 for c in CALLS}
        self.log: list[tuple[float, int]] = []  # (loop time, events sent so far)
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        for c in CALLS:
            await self.store.call_started(CallInfo(call_id=c, transport="sim", tenant="acme", callee="+15550100"))
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            for c in CALLS:
                n = self.sent[c] = self.sent[c] + 1
                if n % 5 == 0:
                    self.store.emit(EndOfTurn(call_id=c, t=n * 0.02, confidence=0.7, silence=0.5, policy="p"))
                else:
                    self.store.emit(CallerSpeechStart(call_id=c, t=n * 0.02, confidence=0.9))
            self.log.append((loop.time(), sum(self.sent.values())))
            await asyncio.sleep(0.02)

    def sent_between(self, t0: float, t1: float) -> int:
        before = max((n for t, n in self.log if t <= t0), default=0)
        upto = max((n for t, n in self.log if t <= t1), default=0)
        return upto - before

    async def stop(self) -> None:
        self._stop.set()
        await self._task
        for c in CALLS:
            await self.store.call_ended(c, "hangup")


async def check_streams(redis, keys, sent: dict[str, int]) -> None:
    """Every event of every call in its stream: in order, exactly once, and the call ended."""
    for c, n in sent.items():
        entries = await redis.xrange(keys.call_events(c))
        seqs = [int(f[b"seq"]) for _, f in entries]
        assert seqs == list(range(1, n + 1)), (c, len(seqs), n)
        ts = [float(f[b"t"]) for _, f in entries]
        assert ts == [round(i * 0.02, 6) for i in range(1, n + 1)]
        assert _s(await redis.hget(keys.call(c), "state")) == "ended"


async def outage(bot: Bot, kill: Callable[[], Awaitable[None]], revive: Callable[[], Awaitable[None]] | None,
                 report: dict) -> None:
    """Calls run; the store dies; /healthz must say so within 5 s and be ok again within 15 s;
    afterwards every event is stored once, in order."""
    store = bot.rt.state
    loop = asyncio.get_running_loop()
    assert (await bot.health())[0] == 200
    callers = Callers(store)
    await callers.start()
    await wait_for(lambda: store.writer.written > 40, 5.0, "events written before the fault")
    buffered0 = counters.value(counters.EVENTS_BUFFERED)
    t_kill = loop.time()
    await kill()
    t_degraded = await bot.wait_health(503, t_kill + 5.0, "degraded")
    code, body = await bot.health()
    assert body["status"] == "degraded" and body["store"]["ok"] is False and body["store"]["error"]
    assert body["state"] == "redis" and body["store"]["since"] >= time.time() - 10
    if revive is not None:  # an external store stays away until we bring it back: calls go on meanwhile
        await wait_for(lambda: store.log.events_pending > 50, 5.0, "events held in memory during the outage")
        await revive()
    t_back = await bot.wait_health(200, t_kill + 15.0, "ok again")
    await wait_for(lambda: callers.sent_between(t_back, loop.time()) > 20, 5.0, "events after recovery")
    await callers.stop()
    assert await store.flush(15)
    during = callers.sent_between(t_kill, t_back)
    assert during > 0
    await check_streams(store.redis, store.keys, callers.sent)
    st = store.stats()
    assert st["dropped"] == 0 and st["write_failures"] > 0
    assert counters.value(counters.EVENTS_BUFFERED) - buffered0 > 0
    report.update(degraded_after=round(t_degraded - t_kill, 2), back_after=round(t_back - t_kill, 2),
                  events_during_outage=during, events=sum(callers.sent.values()))
    print("outage:", report)
    report["sent"] = dict(callers.sent)


async def test_embedded_killed_mid_call_restarted_and_nothing_lost(env, tmp_path):
    from bot.settings import Settings

    settings = replace(Settings.for_tests(), data_dir=str(tmp_path / "data"))
    report: dict = {}
    async with Bot(settings) as bot:
        store = bot.rt.state
        assert store.embedded is not None
        assert store.embedded.data_dir == tmp_path / "data" / f"port-{settings.http.port}"
        port, pid = store.embedded.port, int((await store.redis.info("server"))["process_id"])

        async def kill() -> None:
            os.kill(pid, signal.SIGKILL)

        await outage(bot, kill, None, report)
        _, body = await bot.health()
        assert body["store"]["restarts"] == 1 and body["store"]["kind"] == "embedded"
        assert store.embedded.port == port and int((await store.redis.info("server"))["process_id"]) != pid
        async with bot.http.get(f"http://127.0.0.1:{settings.http.port}/metrics") as r:
            text = await r.text()
        assert "duplexbot_state_store_restarts_total 1.0" in text and "duplexbot_state_store_up 1.0" in text
    # stop the bot, start it again on the same data dir: the earlier calls' traces are still there
    async with Bot(settings) as bot:
        store = bot.rt.state
        assert store.embedded.port == port  # the same port: the CLI's and old clients' URL still works
        await check_streams(store.redis, store.keys, report["sent"])
        assert (await bot.health())[0] == 200


async def test_external_redis_away_and_back(env, tmp_path):
    from bot.settings import Settings

    server = EmbeddedValkey(data_dir=tmp_path / "ext", persist=True)  # "someone else's" Redis
    await server.start()
    env.setenv("REDIS_URL", server.url)
    revived: list[EmbeddedValkey] = []
    report: dict = {}
    try:
        async with Bot(Settings.for_tests()) as bot:
            assert bot.rt.state.embedded is None and bot.rt.store_watch.supervisor is None

            async def kill() -> None:
                await asyncio.to_thread(server.kill_sync)

            async def revive() -> None:
                # nobody restarts an external Redis for us: still degraded a while later
                assert (await bot.health())[0] == 503
                again = EmbeddedValkey(port=server.port, data_dir=tmp_path / "ext", persist=True)
                await again.start()
                revived.append(again)

            await outage(bot, kill, revive, report)
            _, body = await bot.health()
            assert body["store"]["kind"] == "external" and "restarts" not in body["store"]
    finally:
        for s in (server, *revived):
            await s.stop()


ORPHAN = textwrap.dedent("""
    import os, sys
    import redis
    from bot.state.embedded import EmbeddedValkey
    e = EmbeddedValkey(data_dir=sys.argv[1], persist=True)
    e.start_sync()
    redis.Redis(port=e.port).set("left", "behind")
    print(e.port, flush=True)
    os._exit(0)  # the bot dies without stopping its server: the server lives on, an orphan
""")


async def test_orphaned_server_shut_down_and_data_dir_locked(tmp_path):
    data = tmp_path / "d"
    out = subprocess.run([sys.executable, "-c", ORPHAN, str(data)], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    port = int(out.stdout.strip())
    e = EmbeddedValkey(data_dir=data, persist=True)
    await e.start()  # shuts the orphan down, then serves the same data on the same port
    try:
        assert e.port == port
        import redis.asyncio as aredis

        r = aredis.Redis.from_url(e.url)
        assert await r.get("left") == b"behind"
        await r.aclose()
        with pytest.raises(DataDirInUse, match="in use by process"):
            await EmbeddedValkey(data_dir=data, persist=True).start()
    finally:
        await e.stop()


def test_serve_supervises_its_store_and_keeps_it(tmp_path):
    """`duplexbot serve`: kill -9 its Valkey; /healthz 503 then 200; the CLI still works; after a
    restart of the bot the data is still there."""
    import urllib.error
    import urllib.request

    from bot.state.embedded import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DUPLEXBOT_VALKEY_DIR", "XDG_DATA_HOME")}
    env.update(DUPLEXBOT_PORT=str(port), DUPLEXBOT_HOST="127.0.0.1", DUPLEXBOT_SIP_PORT="0", HOME=str(tmp_path),
               DUPLEXBOT_DATA_DIR=str(tmp_path / "data"), DUPLEXBOT_RUNTIME_FILE=str(tmp_path / "rt.json"))

    def health() -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def poll(code: int, seconds: float, proc: subprocess.Popen) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if health()[0] == code:
                    return time.monotonic()
            except OSError:
                pass
            time.sleep(0.05)  # polling: the condition is the answer, not the delay
        raise AssertionError(f"/healthz not {code} within {seconds} s")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=60)

    def serve() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=ROOT)

    def stop(proc: subprocess.Popen) -> None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()

    proc = serve()
    try:
        poll(200, 90, proc)
        assert cli("policy", "set", "--tenant", "acme", "interruption_sensitivity=0.9").returncode == 0
        import redis

        url = json.loads((tmp_path / "rt.json").read_text())["url"]
        pid = int(redis.Redis.from_url(url).info("server")["process_id"])
        os.kill(pid, signal.SIGKILL)
        t_kill = time.monotonic()
        t_degraded = poll(503, 5, proc)
        t_back = poll(200, 15, proc)
        print(f"serve: degraded after {t_degraded - t_kill:.2f} s, ok after {t_back - t_kill:.2f} s")
        assert health()[1]["store"]["restarts"] == 1
        calls = cli("calls", "--json")
        assert calls.returncode == 0 and json.loads(calls.stdout) == [], calls.stderr
    finally:
        stop(proc)
    proc = serve()
    try:
        poll(200, 90, proc)
        listed = cli("policy", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout)["overrides"] == [
            {"tenant": "acme", "overrides": {"interruption_sensitivity": 0.9}}]
    finally:
        stop(proc)
    assert (tmp_path / "data" / f"port-{port}" / "appendonlydir").is_dir()


def test_status_and_backoff_pure():
    s = StoreStatus(ok=True, since=10.0)
    down = s.observe(False, "ConnectionError: refused", 12.0)
    assert (down.ok, down.since, down.error) == (False, 12.0, "ConnectionError: refused")
    still = down.observe(False, "ConnectionError: refused", 13.0)
    assert still.since == 12.0 and still.checked == 13.0
    up = still.observe(True, "", 14.5)
    assert (up.ok, up.since, up.error) == (True, 14.5, "") and "error" not in up.to_dict()
    b = Backoff(first=0.5, cap=30.0)
    assert [b.delay(n) for n in (1, 2, 3, 7, 8, 100)] == [0.5, 1.0, 2.0, 30.0, 30.0, 30.0]
