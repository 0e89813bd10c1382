"""Wire identifiers are data: odd Call-IDs never stop the writer or the heartbeat; poisoned items are
quarantined and counted while the loops go on; runtime files of several bots resolve correctly."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from bot.engine.events import EndOfTurn, TranscriptFinal
from bot.engine.port import CallInfo
from bot.state import counters
from bot.state.consumer import StreamConsumer
from bot.state.keys import Keys, as_text, for_display, is_hashed, key_part
from bot.state.policy_store import Scope
from bot.state.quarantine import record
from bot.state.runtime_file import NoBot, bots_dir, choose, live_bots, read_bot, write_runtime_file
from bot.state.settings import StateSettings

from .conftest import wait_for

pytestmark = pytest.mark.timeout(60)

LONG = "x" * 300 + "@pbx.example"
BINARY = b"\xff\xfe\x00\x01call\r\nid:*{}\x80".decode("utf-8", "surrogateescape")
LATIN = b"\xe9t\xe9\x00:*".decode("latin-1")
ODD = ["", "\n", "a:events", "h-" + "0" * 32, "*", "{tag}", " lead space", LONG, BINARY, LATIN, "é", "x" * 10_000]


def _s(v) -> str:
    return as_text(v)


def test_key_parts_are_safe_stable_and_distinct():
    keys = Keys("dx")
    assert keys.call("c1") == "dx:call:c1"
    assert keys.call("a84b4c76e66710@pc33.atlanta.com") == "dx:call:a84b4c76e66710@pc33.atlanta.com"
    parts = [key_part(v) for v in ODD]
    assert len(set(parts)) == len(parts)  # no two ids share keys ('a:events' is not call 'a''s stream)
    for v, part in zip(ODD, parts):
        assert is_hashed(part), v
        assert key_part(v) == part  # stable
        assert part.isascii() and part.isprintable() and ":" not in part and len(part) == 34
    assert key_part(b"\xff\xfe\x00\x01call\r\nid:*{}\x80") == key_part(BINARY)  # the wire bytes decide
    assert as_text(BINARY).encode("utf-8")  # storable text
    shown = for_display(BINARY)
    assert shown.isprintable() and "\\xff" in shown and "\\r\\n" in shown
    assert as_text(LATIN) == LATIN and for_display("ok id") == "ok id"
    for v in ODD:
        keys.worker(v), keys.policy_tenant(v), keys.policy_number(v)  # never raise


def test_quarantine_record_is_storable_whatever_it_holds():
    rec = record("writer", {"call_id": BINARY, "x": object(), b"k": [1.5, None, "\ud800"]}, ValueError("bad \udcff"),
                 BINARY)
    for v in rec.values():
        v.encode("utf-8")
    assert json.loads(rec["item"])["call_id"] == as_text(BINARY)


async def _call_events(store, cid) -> list[dict[str, str]]:
    return [{_s(k): _s(v) for k, v in f.items()} for _, f in await store.redis.xrange(store.keys.call_events(cid))]


async def test_odd_call_ids_do_not_stop_the_writer_or_the_heartbeat(store):
    before = counters.value(counters.HEARTBEAT_ERRORS)
    for cid in (LONG, BINARY, LATIN, ""):
        await store.call_started(CallInfo(call_id=cid, transport="sip", tenant="acme", caller=cid, callee="+1555"))
        store.emit(EndOfTurn(call_id=cid, t=1.0, confidence=0.9, policy="duplex", silence=0.5))
        store.emit(TranscriptFinal(call_id=cid, t=1.2, speaker="caller", text="hello " + cid[:5]))
    await store.call_started(CallInfo(call_id="normal", transport="sim", tenant="acme"))
    store.emit(EndOfTurn(call_id="normal", t=2.0, confidence=0.8, policy="duplex", silence=0.5))
    assert await store.flush(5.0)
    assert store.writer.errors == 0 and store.writer._task is not None and not store.writer._task.done()

    ev = await _call_events(store, "normal")
    assert [e["type"] for e in ev] == ["end_of_turn"]
    for cid in (LONG, BINARY, LATIN, ""):
        ev = await _call_events(store, cid)
        assert [e["type"] for e in ev] == ["end_of_turn", "transcript_final"], cid
        assert ev[0]["call_id"] == as_text(cid) and ev[0]["decision"] == "take_turn"
        rec = {_s(k): _s(v) for k, v in (await store.redis.hgetall(store.keys.call(cid))).items()}
        assert rec["state"] == "live" and rec["call_id"] == as_text(cid) and rec["caller"] == as_text(cid)

    # listing live calls gives the original ids back; heartbeats keep going for all of them
    listed = {c["call_id"] for c in await store.live_calls()}
    assert listed == {as_text(c) for c in (LONG, BINARY, LATIN, "", "normal")}
    beats = store.liveness.beats
    await wait_for(lambda: store.liveness.beats >= beats + 2, 5.0, "two more heartbeats")
    assert counters.value(counters.HEARTBEAT_ERRORS) == before and store.liveness.skipped == 0
    for cid in (BINARY, "normal"):
        assert await store.redis.zscore(store.keys.live, store.keys.member(cid)) is not None

    await store.call_ended(BINARY, "hangup")
    store.emit(EndOfTurn(call_id="normal", t=3.0, confidence=0.7, policy="duplex", silence=0.5))
    assert await store.flush(5.0)
    assert [e["type"] for e in await _call_events(store, "normal")] == ["end_of_turn", "end_of_turn"]
    assert as_text(BINARY) not in {c["call_id"] for c in await store.live_calls()}


async def test_poisoned_items_are_quarantined_and_the_loops_go_on(store):
    q0, hb0 = counters.value(counters.EVENTS_QUARANTINED), counters.value(counters.HEARTBEAT_ERRORS)
    await store.call_started(CallInfo(call_id="good", transport="sim", tenant="acme"))
    await store.call_started(CallInfo(call_id="poison", transport="sim", tenant="acme"))
    assert await store.flush(5.0)
    # Bad data in Redis: the poisoned call's record is no hash any more, so every write touching it
    # is refused (WRONGTYPE) however often it is retried.
    await store.redis.delete(store.keys.call("poison"))
    await store.redis.set(store.keys.call("poison"), "not a hash")
    for i in range(3):
        store.emit(EndOfTurn(call_id="good", t=float(i), confidence=0.9, policy="p", silence=0.5))
        store.emit(EndOfTurn(call_id="poison", t=float(i), confidence=0.9, policy="p", silence=0.5))
    assert await store.flush(5.0)
    assert len(await _call_events(store, "good")) == 3  # the good call's events of the same batches land
    assert counters.value(counters.EVENTS_QUARANTINED) >= q0 + 3
    quarantined = [{_s(k): _s(v) for k, v in f.items()} for _, f in await store.redis.xrange(store.keys.quarantine)]
    assert {q["call_id"] for q in quarantined} == {"poison"} and all("WRONGTYPE" in q["error"] for q in quarantined)
    assert all(q["source"] == "writer" and json.loads(q["item"])["call_id"] == "poison" for q in quarantined)

    # the heartbeat of every other call goes on; the poisoned one is skipped and counted
    beats = store.liveness.beats
    await wait_for(lambda: store.liveness.beats >= beats + 2 and store.liveness.skipped >= 2, 5.0, "heartbeats")
    assert counters.value(counters.HEARTBEAT_ERRORS) >= hb0 + 2
    assert "good" in {c["call_id"] for c in await store.live_calls()}

    # the writer is still alive: later events of the good call land, a call end of the poisoned
    # call is quarantined too (and its caller is not held up)
    await store.call_ended("poison", "hangup")
    store.emit(EndOfTurn(call_id="good", t=9.0, confidence=0.9, policy="p", silence=0.5))
    assert await store.flush(5.0)
    assert len(await _call_events(store, "good")) == 4
    assert not store.writer._task.done()


async def test_a_poisoned_stream_entry_is_quarantined_and_the_consumer_goes_on(store):
    stream = store.keys.events
    await store.redis.xadd(stream, {"call_id": b"\xff\xfe", "type": "bad"})
    await store.redis.xadd(stream, {"call_id": "ok", "type": "fine"})
    c0 = counters.value(counters.CONSUMER_ERRORS)
    seen: list[str] = []

    def handler(eid: str, fields: dict[str, str]) -> None:
        if fields["type"] == "bad":
            raise ValueError("cannot handle this one")
        seen.append(fields["call_id"])

    consumer = StreamConsumer(store.redis, stream, "exporter", "e1", min_idle=0.0)
    task = asyncio.create_task(consumer.run(handler, block=0.05, claim_every=0.01))
    try:
        await wait_for(lambda: consumer.quarantined == 1 and seen == ["ok"], 5.0, "poisoned entry quarantined")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert counters.value(counters.CONSUMER_ERRORS) >= c0 + 3
    q = [{_s(k): _s(v) for k, v in f.items()} for _, f in await store.redis.xrange(store.keys.quarantine)]
    assert len(q) == 1 and q[0]["call_id"] == "\\xff\\xfe" and q[0]["source"] == "consumer:exporter"
    assert not (await store.redis.xpending(stream, "exporter"))["pending"]


async def test_odd_tenants_and_numbers_in_policy_keys(store):
    tenant = "acme:{eu}*\n" + "t" * 300
    await store.policies.set(Scope(tenant=tenant), {"interruption_sensitivity": 0.7})
    await store.policies.set(Scope(number="+1 555 0100"), {"backchannel": "interrupt"})
    resolved = await store.policies.resolve(tenant, "+15550100")
    assert resolved.policy.interruption_sensitivity == 0.7 and resolved.policy.backchannel == "interrupt"
    listed = await store.policies.list()
    assert {"tenant": tenant, "overrides": {"interruption_sensitivity": 0.7}} in listed
    assert {"number": "+15550100", "overrides": {"backchannel": "interrupt"}} in listed


# ---- runtime files --------------------------------------------------------------------------------
def test_runtime_files_of_several_bots(tmp_path, monkeypatch):
    settings = StateSettings(prefix="dx", worker_id="w", xdg_runtime_dir=str(tmp_path))
    d = bots_dir(settings.runtime_dir)
    assert str(d).startswith(str(tmp_path))
    with pytest.raises(NoBot, match="duplexbot serve"):
        choose(live_bots(settings), None, str(d))

    write_runtime_file(d / f"{os.getpid()}.json", "redis://127.0.0.1:7001/0", 8081)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(10)
    try:
        (d / f"{other.pid}.json").write_text(json.dumps({"url": "redis://127.0.0.1:7002/0", "pid": other.pid,
                                                         "port": 8082}))
        stale = d / f"{dead.pid}.json"
        stale.write_text(json.dumps({"url": "redis://127.0.0.1:7003/0", "pid": dead.pid, "port": 8083}))
        (d / "garbage.json").write_text("{not json")
        bots = live_bots(settings)
        assert [(b.port, b.url) for b in bots] == [(8081, "redis://127.0.0.1:7001/0"), (8082, "redis://127.0.0.1:7002/0")]
        assert not stale.exists()  # a dead bot's file is cleaned
        with pytest.raises(NoBot, match="--port") as e:
            choose(bots, None, str(d))
        assert "8081" in str(e.value) and "8082" in str(e.value)
        assert choose(bots, 8082, str(d)).url == "redis://127.0.0.1:7002/0"
        with pytest.raises(NoBot, match="port 9999"):
            choose(bots, 9999, str(d))
        # one bot stops: the other is found with no --port
        (d / f"{other.pid}.json").unlink()
        assert choose(live_bots(settings), None, str(d)).port == 8081
    finally:
        other.kill()
        other.wait(10)
    assert read_bot(d / f"{os.getpid()}.json").pid == os.getpid()


async def test_two_serving_bots_and_the_cli(tmp_path, monkeypatch):
    """Two stores with embedded servers publish two runtime files; the CLI needs --port to pick,
    and after one stops the other is found without it."""
    from bot.state.store import CallStore

    from .test_embedded_cli import cli

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DUPLEXBOT_RUNTIME_FILE", raising=False)
    monkeypatch.delenv("DUPLEXBOT_PORT", raising=False)
    env = dict(os.environ)
    # Another bot is another process with its own file; here it is placed in the same directory
    # under another name (both stores live in this process).
    here = StateSettings.from_env(os.environ)  # as the CLI's subprocesses read it
    assert here.xdg_runtime_dir == str(tmp_path)
    b_file = bots_dir(here.runtime_dir) / "other-bot.json"
    b = await CallStore.open(StateSettings(prefix="dx", worker_id="b", runtime_file=str(b_file)), http_port=8092)
    a = await CallStore.open(StateSettings(prefix="dx", worker_id="a", xdg_runtime_dir=str(tmp_path)), http_port=8091)
    assert a.runtime_path.parent == b_file.parent and a.runtime_path != b_file
    try:
        await a.call_started(CallInfo(call_id="on-a", transport="sim", tenant="acme"))
        await b.call_started(CallInfo(call_id="on-b", transport="sim", tenant="acme"))
        amb = await cli("calls", "--json", env=env)
        assert amb.returncode == 2 and "--port" in amb.stderr and "8091" in amb.stderr and "8092" in amb.stderr
        got = await cli("calls", "--json", "--port", "8092", env=env)
        assert [c["call_id"] for c in json.loads(got.stdout)] == ["on-b"], got.stderr
        monkeypatch.setenv("DUPLEXBOT_PORT", "8091")
        got = await cli("policy", "list", "--json", env=env)
        assert got.returncode == 0, got.stderr
        monkeypatch.delenv("DUPLEXBOT_PORT")
    finally:
        await b.close()
    assert not b_file.exists()
    assert await a.flush(5.0)
    got = await cli("calls", "--json", env=env)
    assert [c["call_id"] for c in json.loads(got.stdout)] == ["on-a"], got.stderr
    await a.close()
    assert not a.runtime_path.exists()
