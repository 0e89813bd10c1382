"""bot/routes/sip.py + bot/transports/sip.py: the listener starts with the app when DUPLEXBOT_SIP=1
and every call reaches `runtime.calls.run(transport)` as a `SipTransport`."""
from types import SimpleNamespace

from aiohttp import web

from bot.audio.frame import AudioFrame
from bot.engine.admission import AdmissionController, AdmissionSettings
from bot.engine.port import Hangup, Transport
from bot.routes import sip as sip_route
from sip.config import SipSettings

from .conftest import in_thread
from .peer import Peer, normal_call, options
from .test_sipp import free_udp_port


class FakeCalls:
    def __init__(self):
        self.transports = []
        self.items = []

    async def run(self, transport):
        self.transports.append(transport)
        while True:
            item = await transport.receive()
            self.items.append(item)
            if isinstance(item, Hangup):
                return


def runtime(env):
    return SimpleNamespace(settings=SimpleNamespace(sip=SipSettings.from_env(env)), calls=FakeCalls(),
                           admission=AdmissionController(AdmissionSettings(max_calls=10)))


def options_status(port: int) -> int:
    p = Peer(port)
    try:
        data, cid = options(port, p.local)
        p.send(data)
        r = p.final(cid, "OPTIONS")
        return r.status if r else 0
    finally:
        p.close()


async def test_listener_runs_calls_through_the_engine_port():
    port = free_udp_port()
    rt = runtime({"DUPLEXBOT_SIP": "1", "DUPLEXBOT_SIP_PORT": str(port), "DUPLEXBOT_SIP_BIND": "127.0.0.1"})
    app = web.Application()
    sip_route.setup(app, rt)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        server = app[sip_route.SIP_SERVER_KEY]
        assert server.port == port
        assert await in_thread(options_status, port) == 200
        assert await in_thread(normal_call, port) == 200
        t = rt.calls.transports[0]
        assert isinstance(t, Transport) and t.info.transport == "sip"
        assert isinstance(rt.calls.items[-1], Hangup) and rt.calls.items[-1].reason == "remote"
        frames = [i for i in rt.calls.items if isinstance(i, AudioFrame)]
        assert all(f.sample_rate == 8000 and f.samples == 160 for f in frames)
        from prometheus_client import REGISTRY, generate_latest
        text = generate_latest(REGISTRY).decode()
        assert 'duplexbot_sip_core_events_total{event="request_INVITE"} 1.0' in text
        assert "duplexbot_sip_live_calls" in text and "duplexbot_sip_media_clock_late_seconds" in text
    finally:
        await runner.cleanup()
    assert server.calls == {} and not server._tasks


async def test_disabled_by_default():
    app = web.Application()
    sip_route.setup(app, runtime({"DUPLEXBOT_SIP": "0"}))
    assert len(app.on_startup) == len(web.Application().on_startup)


async def test_post_sip_calls_places_an_outbound_call(tmp_path):
    import asyncio
    import shutil

    import aiohttp
    import pytest

    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed")
    port, uas_port = free_udp_port(), free_udp_port()
    rt = runtime({"DUPLEXBOT_SIP": "1", "DUPLEXBOT_SIP_PORT": str(port), "DUPLEXBOT_SIP_BIND": "127.0.0.1",
                  "DUPLEXBOT_SIP_CALL_TOKEN": "t0ken"})
    app = web.Application()
    sip_route.setup(app, rt)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    http_port = runner.addresses[0][1]
    uas = await asyncio.create_subprocess_exec(
        "sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-mi", "127.0.0.1", "-mp", str(free_udp_port()),
        "-m", "1", "-nostdin", "-timeout", "20s", cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{http_port}/sip/calls"
            body = {"to": f"sip:sipp@127.0.0.1:{uas_port}"}
            async with http.post(url, json=body) as r:
                assert r.status == 403
            async with http.post(url, json={"to": "nonsense"}, headers={"Authorization": "Bearer t0ken"}) as r:
                assert r.status == 400
            async with http.post(url, json=body, headers={"Authorization": "Bearer t0ken"}) as r:
                assert r.status == 200, await r.text()
                call_id = (await r.json())["call_id"]
        for _ in range(100):
            if rt.calls.transports:
                break
            await asyncio.sleep(0.05)
        t = rt.calls.transports[0]
        assert t.info.call_id == call_id
        await t.close("done")
        assert await asyncio.wait_for(uas.wait(), 20) == 0
    finally:
        if uas.returncode is None:
            uas.kill()
            await uas.wait()
        await runner.cleanup()
