"""A flood against the SIP listener with the real engine behind it (bot.runtime.Runtime, wired by
bot/routes/sip.py with the process's admission controller at DUPLEXBOT_MAX_CALLS=5).

A sender in its own process (tests/sip/flood_sender.py) sends 100 cases/s for 30 s: the RFC 4475
torture messages from ../shared/sip-torture (when present) and malformed variants of its own,
odd-but-valid INVITEs each followed by its CANCEL, and INVITEs held for 2 s; an OPTIONS probe every
0.5 s. Then: every probe answered within 500 ms, no kernel receive drops on the listener's socket,
calls beyond the cap answered 503 with Retry-After, never more than 5 calls at once, and a normal
sipp call afterwards is answered and hears the bot's greeting."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from aiohttp import web

from bot.routes import admission as admission_route
from bot.routes import sip as sip_route

from .conftest import REPO, TORTURE, in_thread, need
from .test_sipp import free_udp_port, run_sipp

pytestmark = pytest.mark.timeout(150)

CAP = 5
RATE, SECONDS, PROBE_EVERY, HOLD = 100, 30, 0.5, 2.0


def flood(port: int) -> dict:
    torture = TORTURE / "rfc4475"
    cmd = [sys.executable, "-m", "tests.sip.flood_sender", "--port", str(port), "--rate", str(RATE),
           "--seconds", str(SECONDS), "--probe-every", str(PROBE_EVERY), "--hold", str(HOLD)]
    if torture.is_dir():                      # CI has ../shared read-only beside the clone; else ours only
        cmd += ["--torture", str(torture)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=SECONDS + 30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.peer
@pytest.mark.slow
@need("sipp")
async def test_flood_is_shed_and_probes_and_a_later_call_are_answered(tmp_path):
    from bot.runtime import Runtime
    from bot.settings import Settings

    port = free_udp_port()
    env = {"DUPLEXBOT_SIP": "1", "DUPLEXBOT_SIP_PORT": str(port), "DUPLEXBOT_SIP_BIND": "127.0.0.1",
           "DUPLEXBOT_SIP_ADVERTISE": "127.0.0.1", "DUPLEXBOT_MAX_CALLS": str(CAP)}
    settings = replace(Settings.from_env(env), state_enabled=False, policy_name="baseline")
    runtime = await Runtime.start(settings)
    sent: dict[str, list[np.ndarray]] = {}
    run = runtime.calls.run

    async def tapped_run(transport, sinks=None):      # what each call's transport pulled for RTP
        call = transport.call
        frames = sent.setdefault(call.call_id, [])
        set_output = call.set_output

        def tap(pull):
            if pull is None:
                return set_output(None)

            def pulled(n):
                pcm = pull(n)
                frames.append(np.array(pcm, np.int16))
                return pcm
            return set_output(pulled)
        call.set_output = tap
        return await run(transport, sinks)
    runtime.calls.run = tapped_run
    app = web.Application()
    sip_route.setup(app, runtime)
    admission_route.setup(app, runtime)
    runner = web.AppRunner(app)
    await runner.setup()
    peak = [0, 0, 0]

    async def watch() -> None:
        while True:
            peak[0] = max(peak[0], runtime.admission.live(asyncio.get_running_loop().time()))
            peak[1] = max(peak[1], len(server.calls))
            peak[2] = max(peak[2], len(runtime.calls.live()))       # a slot lasts until the engine is done
            await asyncio.sleep(0.02)
    try:
        server = app[sip_route.SIP_SERVER_KEY]
        assert server.admission is not None and runtime.admission.cap == CAP
        drops_before = server.kernel_drops()
        watcher = asyncio.create_task(watch())
        report = await in_thread(flood, port)
        watcher.cancel()
        drops = server.kernel_drops()
        print("flood report:", json.dumps({k: v for k, v in report.items() if k != "probe_latency_ms"}))
        print("udp:", server.udp_stats(), "drops:", drops_before, drops, "peak live:", peak,
              "admitted:", dict(runtime.admission.admitted), "refused:", dict(runtime.admission.refused),
              "core:", {k: v for k, v in server.ua.stats.items() if k.startswith(("invite_", "rejected", "malformed"))})

        assert report["rate"] >= 0.95 * RATE, report
        assert report["probes"] >= SECONDS / PROBE_EVERY - 1
        slow = [x for x in report["probe_latency_ms"] if x >= 500]
        assert report["probes_answered"] == report["probes"] and not slow, \
            f"{report['probes'] - report['probes_answered']} probes unanswered, slow: {slow}"
        assert drops_before is not None and drops == drops_before, f"kernel dropped {drops - drops_before}"
        udp = server.udp_stats()
        assert udp["received"] >= report["datagrams"]                  # every datagram was read ...
        assert udp["queue_full"] == 0 and udp["stale"] == 0             # ... and handled
        finals = report["finals"]
        assert finals.get("held:503", 0) > 0 and runtime.admission.refused[("sip", "capacity")] > 0, finals
        assert finals.get("held:200", 0) >= CAP, finals
        assert max(peak) <= CAP, peak
        assert server.stats["internal_error"] == 0 and server.stats["handler_error"] == 0

        for _ in range(100):                  # the flood's calls are over
            if not runtime.calls.live() and not server.calls:
                break
            await asyncio.sleep(0.05)
        before = set(sent)
        await in_thread(lambda: run_sipp(tmp_path, "listen.xml", port, {"hold_ms": 5000}, "u1", 30))
        (final,) = set(sent) - before
        pcm = np.concatenate(sent[final]).astype(np.float32)
        assert len(pcm) >= 4 * 8000, "the final call was not carried for its 5 s"
        loud = np.mean(np.abs(pcm.reshape(-1, 160)).mean(axis=1) > 300)
        assert loud > 0.2, f"the final call did not hear the greeting (voiced fraction {loud:.2f})"

        from prometheus_client import REGISTRY, generate_latest
        text = generate_latest(REGISTRY).decode()
        assert 'duplexbot_admission_refused_total{reason="capacity",transport="sip"}' in text
        assert "duplexbot_sip_udp_kernel_drops_total" in text and "duplexbot_event_loop_lag_seconds" in text
    finally:
        await runner.cleanup()
        await runtime.close()


async def test_a_probe_is_not_queued_behind_a_backlog_of_invites(sip_server):
    """500 INVITEs and one OPTIONS land in the socket before the listener reads it: the OPTIONS is
    answered before nearly all the INVITEs, and all 501 are answered."""
    import socket

    from sip.message import Response, parse_message

    from .peer import invite, options

    srv = await sip_server()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        local = s.getsockname()
        for i in range(500):                  # no await in between: the server reads nothing yet
            s.sendto(invite(srv.port, local, rtp_port=30000 + 2 * i)[0], ("127.0.0.1", srv.port))
        probe, probe_id = options(srv.port, local)
        s.sendto(probe, ("127.0.0.1", srv.port))
        s.setblocking(False)
        order = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len({cid for cid, _ in order}) < 501 and loop.time() < deadline:
            try:
                msg = parse_message(s.recv(65535))
            except BlockingIOError:
                await asyncio.sleep(0.005)
                continue
            if isinstance(msg, Response) and msg.status >= 200:
                order.append((msg.call_id, msg.status))
    finals = [cid for cid, _ in order]
    assert probe_id in finals and len(set(finals)) == 501
    assert finals.index(probe_id) < 50, f"the probe came {finals.index(probe_id)}th"
    assert srv.kernel_drops() == 0 and srv.udp_stats()["queued"] >= 400
