"""Scale-out: kamailio's dispatcher (sip/deploy/kamailio.cfg) in front of two bot workers on
127.0.0.1 spreads calls over both, and fails over when one stops."""
from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import REPO, in_thread, need, wait_hangup
from .test_sipp import free_udp_port

pytestmark = [pytest.mark.peer, need("kamailio"), need("sipp")]
CFG = REPO / "sip" / "deploy" / "kamailio.cfg"
SCEN = REPO / "sip" / "deploy" / "sipp" / "call.xml"


def sipp_calls(port: int, calls: int, rate: int, tmp: Path) -> subprocess.CompletedProcess:
    cmd = ["sipp", "-sf", str(SCEN), f"127.0.0.1:{port}", "-m", str(calls), "-r", str(rate), "-d", "300",
           "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(free_udp_port()), "-nostdin",
           "-timeout", "30s", "-timeout_error", "-trace_err", "-error_file", str(tmp / "sipp.err")]
    return subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=45)


class Counting:
    def __init__(self):
        self.n = 0

    async def __call__(self, call):
        self.n += 1
        await wait_hangup(call)


async def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_dispatcher_spreads_and_fails_over(sip_server, tmp_path):
    workers = [Counting(), Counting()]
    servers = [await sip_server(w) for w in workers]
    (tmp_path / "ds.list").write_text("".join(f"1 sip:127.0.0.1:{s.port} 0 0\n" for s in servers))
    kport = free_udp_port()
    kam = subprocess.Popen(["kamailio", "-DD", "-E", "-f", str(CFG), "-Y", str(tmp_path), "-w", str(tmp_path),
                            "-m", "64", "-M", "8", "-A", f'DS_LIST="{tmp_path / "ds.list"}"',
                            "-A", f"LISTEN=udp:127.0.0.1:{kport}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # ready when the dispatcher's OPTIONS keepalive has reached both workers
        await wait_for(lambda: all(s.ua.stats["request_OPTIONS"] > 0 for s in servers) or kam.poll() is not None,
                       15, "kamailio's OPTIONS probes")
        assert kam.poll() is None, "kamailio exited"
        run = await in_thread(sipp_calls, kport, 10, 10, tmp_path)
        assert run.returncode == 0, run.stdout[-2000:] + (tmp_path / "sipp.err").read_text()
        assert workers[0].n >= 3 and workers[1].n >= 3, [w.n for w in workers]
        assert workers[0].n + workers[1].n == 10

        await servers[1].close()          # worker 2 stops
        before = workers[0].n
        run = await in_thread(sipp_calls, kport, 6, 6, tmp_path)
        assert run.returncode == 0, run.stdout[-2000:] + (tmp_path / "sipp.err").read_text()
        assert workers[0].n - before == 6
    finally:
        kam.terminate()
        try:
            kam.wait(10)
        except subprocess.TimeoutExpired:
            kam.kill()
            kam.wait(5)
