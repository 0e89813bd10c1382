"""The embedded server's lifecycle, its runtime file, and the `duplexbot policy` CLI against it."""
from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys

import pytest

from bot.engine.port import CallInfo
from bot.state.embedded import read_runtime_file
from bot.state.settings import StateSettings
from bot.state.store import CallStore

pytestmark = pytest.mark.timeout(90)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli_process(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)


async def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    """`duplexbot ARGS` in-process (in a thread: the commands run their own event loop)."""
    from bot.cli import main

    def run() -> subprocess.CompletedProcess:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(list(args))
        return subprocess.CompletedProcess(list(args), rc, out.getvalue(), err.getvalue())

    return await asyncio.to_thread(run)


async def test_embedded_server_runtime_file_and_cli(tmp_path, monkeypatch):
    rt = tmp_path / "redis.json"
    settings = StateSettings(redis_url=None, prefix="dx", worker_id="w1", runtime_file=str(rt))
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["DUPLEXBOT_RUNTIME_FILE"] = str(rt)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DUPLEXBOT_RUNTIME_FILE", str(rt))
    store = await CallStore.open(settings)
    try:
        url = read_runtime_file(rt)
        assert url == store.url and url.startswith("redis://127.0.0.1:")
        assert await store.redis.ping()
        await store.call_started(CallInfo(call_id="c1", transport="sim", tenant="acme", callee="+15550100"))
        ok = await cli("policy", "set", "--tenant", "acme", "interruption_sensitivity=0.9", "end_of_turn=fast", env=env)
        assert ok.returncode == 0, ok.stderr
        bad = await cli("policy", "set", "--tenant", "acme", "backchannel=sometimes", env=env)
        assert bad.returncode == 2 and "backchannel must be one of ignore, interrupt" in bad.stderr
        got = await cli("policy", "get", "--tenant", "acme", "--number", "+15550100", "--json", env=env)
        data = json.loads(got.stdout)
        assert data["policy"]["interruption_sensitivity"] == 0.9 and data["sources"]["end_of_turn"] == "tenant:acme"
        assert data["settings"]["end_of_turn_silence"] == 0.3
        listed = await cli("policy", "list", "--json", env=env)
        assert json.loads(listed.stdout)["overrides"] == [
            {"tenant": "acme", "overrides": {"end_of_turn": "fast", "interruption_sensitivity": 0.9}}]
        calls = await cli("calls", "--json", env=env)
        assert [c["call_id"] for c in json.loads(calls.stdout)] == ["c1"]
        policy = await store.policy_for(CallInfo(call_id="c1", transport="sim", tenant="acme"))
        assert policy.end_of_turn_silence == 0.3
    finally:
        await store.close()
    assert not rt.exists()
    assert not store.embedded.server.is_running()
    gone = cli_process("policy", "list", env=env)
    assert gone.returncode == 2 and "duplexbot serve" in gone.stderr and "REDIS_URL" in gone.stderr
