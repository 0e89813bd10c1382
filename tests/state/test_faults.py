"""Faults: the Redis server dies mid-call and comes back; a worker dies mid-call."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from bot.engine.events import BotSpeechStart, CallerSpeechStart, EndOfTurn
from bot.engine.port import CallInfo
from bot.state.embedded import EmbeddedValkey
from bot.state.settings import StateSettings
from bot.state.store import CallStore

from .conftest import wait_for

pytestmark = pytest.mark.timeout(90)


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


async def test_redis_killed_and_restarted_mid_call(tmp_path):
    data = tmp_path / "valkey"
    server = EmbeddedValkey(data_dir=data, persist=True)
    await server.start()
    port = server.port
    settings = StateSettings(redis_url=server.url, prefix="f", worker_id="w1", heartbeat_interval=0.2,
                             heartbeat_ttl=1.0, reaper_interval=0.2, op_timeout=0.3, socket_timeout=0.5,
                             runtime_file=str(tmp_path / "rt.json"))
    store = await CallStore.open(settings)
    call = CallInfo(call_id="c1", transport="sim", tenant="acme", callee="+15550100")
    restarted = None
    try:
        await store.call_started(call)
        policy = await store.policy_for(call)
        n = 0

        def burst(k):
            nonlocal n
            for _ in range(k):
                n += 1
                store.emit(CallerSpeechStart(call_id="c1", t=n * 0.032, confidence=0.9))
                if n % 10 == 0:
                    store.emit(EndOfTurn(call_id="c1", t=n * 0.032, confidence=0.7, silence=0.5, policy="p"))
                    n += 1

        burst(200)
        await asyncio.sleep(0)  # let the writer pick a batch up, then pull the plug under it
        await asyncio.to_thread(server.kill_sync)
        burst(300)
        # the call goes on without Redis: policy from cache, end of call does not hang or raise
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await store.policy_for(call) == policy
        store.emit(BotSpeechStart(call_id="c1", t=99.0, text="goodbye", turn=1))
        n += 1
        await store.call_ended("c1", "hangup")
        assert loop.time() - t0 < 3.0
        assert not await store.flush(0.5)  # nothing can land while the server is down
        assert not store.writer.connected and store.stats()["dropped"] == 0
        restarted = EmbeddedValkey(port=port, data_dir=data, persist=True)
        await restarted.start()
        assert await store.flush(15)
        entries = await store.redis.xrange(store.keys.call_events("c1"))
        seqs = [int(f[b"seq"]) for _, f in entries]
        assert seqs == list(range(1, n + 1))  # in order, exactly once
        glob = [int(f[b"seq"]) for _, f in await store.redis.xrange(store.keys.events) if f[b"call_id"] == b"c1"]
        assert glob == seqs
        rec = {_s(k): _s(v) for k, v in (await store.redis.hgetall(store.keys.call("c1"))).items()}
        assert rec["state"] == "ended" and rec["end_reason"] == "hangup"
        assert store.writer.failures > 0
        assert await store.live_calls() == []
    finally:
        await store.close()
        for s in (server, restarted):
            if s is not None:
                await s.stop()


WORKER = textwrap.dedent("""
    import asyncio, sys
    from bot.engine.events import CallerSpeechStart
    from bot.engine.port import CallInfo
    from bot.state.settings import StateSettings
    from bot.state.store import CallStore

    async def main():
        s = StateSettings(redis_url=sys.argv[1], prefix=sys.argv[2], worker_id="doomed", heartbeat_interval=0.2,
                          heartbeat_ttl=1.0, reaper_interval=0.2, runtime_file=sys.argv[3])
        store = await CallStore.open(s)
        await store.call_started(CallInfo(call_id="victim", transport="sim", tenant="acme"))
        store.emit(CallerSpeechStart(call_id="victim", t=0.1, confidence=0.9))
        assert await store.flush(5)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")


async def test_dead_worker_calls_are_reaped(valkey, tmp_path):
    prefix = f"r{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen([sys.executable, "-c", WORKER, valkey.url, prefix, str(tmp_path / "rt.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    settings = StateSettings(redis_url=valkey.url, prefix=prefix, worker_id="survivor", heartbeat_interval=0.2,
                             heartbeat_ttl=1.0, reaper_interval=0.2, runtime_file=str(tmp_path / "rt2.json"))
    store = await CallStore.open(settings)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert line.strip() == "ready", proc.stderr.read() if proc.poll() is not None else line
        await store.call_started(CallInfo(call_id="mine", transport="sim", tenant="acme"))
        assert {c["call_id"] for c in await store.live_calls()} == {"victim", "mine"}
        # the doomed worker keeps its call alive past several heartbeat TTLs while it runs
        first = await store.redis.zscore(store.keys.live, "victim")
        await wait_for(lambda: _zgt(store, "victim", first), 3.0, "a heartbeat from the doomed worker")
        proc.kill()
        proc.wait(5)
        t0 = time.monotonic()

        async def reaped():
            return _s(await store.redis.hget(store.keys.call("victim"), "state")) == "ended"

        await wait_for(reaped, 5.0, "the dead worker's call to be reaped")
        assert time.monotonic() - t0 < 3.0
        rec = {_s(k): _s(v) for k, v in (await store.redis.hgetall(store.keys.call("victim"))).items()}
        assert rec["end_reason"] == "worker_lost" and rec["worker"] == "doomed"
        assert [c["call_id"] for c in await store.live_calls()] == ["mine"]
        last = (await store.redis.xrevrange(store.keys.call_events("victim"), count=1))[0][1]
        assert last[b"type"] == b"call_ended" and last[b"decision"] == b"reaped"
        assert _s(await store.redis.hget(store.keys.call("mine"), "state")) == "live"  # ours untouched
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
        proc.stderr.close()
        await store.close()


async def _zgt(store, member, than):
    v = await store.redis.zscore(store.keys.live, member)
    return v is not None and v > than


async def test_redis_restarted_empty_live_calls_register_again(tmp_path):
    server = EmbeddedValkey()
    await server.start()
    port = server.port
    settings = StateSettings(redis_url=server.url, prefix="e", worker_id="w1", heartbeat_interval=0.1,
                             heartbeat_ttl=1.0, reaper_interval=0.2, op_timeout=0.3, socket_timeout=0.5,
                             runtime_file=str(tmp_path / "rt.json"))
    store = await CallStore.open(settings)
    restarted = None
    try:
        await store.call_started(CallInfo(call_id="c1", transport="sim", tenant="acme"))
        store.emit(CallerSpeechStart(call_id="c1", t=0.1, confidence=0.9))
        assert await store.flush(5)
        await asyncio.to_thread(server.kill_sync)
        store.emit(CallerSpeechStart(call_id="c1", t=0.2, confidence=0.9))
        restarted = EmbeddedValkey(port=port)  # no persistence: comes back empty
        await restarted.start()
        assert await store.flush(10)

        async def back():
            return [c["call_id"] for c in await store.live_calls()] == ["c1"]

        await wait_for(back, 3.0, "the live call registered again")
        rec = {_s(k): _s(v) for k, v in (await store.redis.hgetall(store.keys.call("c1"))).items()}
        assert rec["tenant"] == "acme" and rec["worker"] == "w1" and rec["state"] == "live"
        assert [int(f[b"seq"]) for _, f in await store.redis.xrange(store.keys.call_events("c1"))] == [2]
        await store.call_ended("c1", "hangup")
        assert _s(await store.redis.hget(store.keys.call("c1"), "state")) == "ended"
    finally:
        await store.close()
        for s in (server, restarted):
            if s is not None:
                await s.stop()


async def test_buffer_bounded_while_redis_away(tmp_path):
    server = EmbeddedValkey()
    await server.start()
    port = server.port
    settings = StateSettings(redis_url=server.url, prefix="b", worker_id="w1", heartbeat_interval=0.2,
                             heartbeat_ttl=1.0, reaper_interval=0.2, op_timeout=0.3, socket_timeout=0.5,
                             buffer_max=50, runtime_file=str(tmp_path / "rt.json"))
    store = await CallStore.open(settings)
    call = CallInfo(call_id="c1", transport="sim", tenant="acme")
    restarted = None
    try:
        await store.call_started(call)
        await asyncio.to_thread(server.kill_sync)
        for i in range(120):
            store.emit(CallerSpeechStart(call_id="c1", t=i * 0.1, confidence=0.9))
        assert store.stats()["dropped"] == 70 and store.stats()["dropped_by_type"] == {"caller_speech_start": 70}
        await wait_for(lambda: not store.writer.connected, 3.0, "the writer to notice")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await store.call_started(CallInfo(call_id="c2", transport="sim"))  # no wait while Redis is known away
        await store.policy_for(call)
        assert loop.time() - t0 < 0.2
        await store.call_ended("c1", "hangup")
        restarted = EmbeddedValkey(port=port)
        await restarted.start()
        assert await store.flush(10)
        seqs = [int(f[b"seq"]) for _, f in await store.redis.xrange(store.keys.call_events("c1"))]
        assert seqs == list(range(1, 51))  # the first 50 kept; 51..120 dropped, visible as a gap
        rec = {_s(k): _s(v) for k, v in (await store.redis.hgetall(store.keys.call("c1"))).items()}
        assert rec["state"] == "ended" and rec["events_dropped"] == "70"
    finally:
        await store.close()
        for s in (server, restarted):
            if s is not None:
                await s.stop()
