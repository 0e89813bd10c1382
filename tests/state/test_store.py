"""CallStore against the real embedded Valkey server (one per module)."""
from __future__ import annotations

import asyncio
import json
import random

import pytest

from bot.engine.events import (
    BargeIn,
    BotSpeechStart,
    BotTruncated,
    CallerSpeechStart,
    DtmfReceived,
    EndOfTurn,
    TranscriptFinal,
    TranscriptPartial,
)
from bot.engine.port import CallInfo
from bot.state.consumer import StreamConsumer
from bot.state.policy import PolicyError
from bot.state.policy_store import Scope
from bot.state.scripts import EVENTS_LUA, TRANSITION_LUA

from .conftest import wait_for

pytestmark = pytest.mark.timeout(60)


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def info(call_id="c1", tenant="acme", callee="+15550100") -> CallInfo:
    return CallInfo(call_id=call_id, transport="sim", caller="+15559999", callee=callee, tenant=tenant)


async def test_call_record_lifecycle_and_live_calls(store):
    await store.call_started(info("c1"))
    await store.call_started(info("c2", tenant="other"))
    live = await store.live_calls()
    assert {c["call_id"] for c in live} == {"c1", "c2"}
    assert [c["call_id"] for c in await store.live_calls("acme")] == ["c1"]
    c1 = next(c for c in live if c["call_id"] == "c1")
    assert c1["state"] == "live" and c1["worker"] == "w1" and c1["transport"] == "sim" and c1["rev"] == "1"
    await store.call_ended("c1", "hangup")
    rec = {_s(k): _s(v) for k, v in (await store.redis.hgetall(store.keys.call("c1"))).items()}
    assert rec["state"] == "ended" and rec["end_reason"] == "hangup" and rec["rev"] == "2"
    assert [c["call_id"] for c in await store.live_calls()] == ["c2"]


async def test_transitions_idempotent_under_concurrent_retries(store):
    """Every write of a call's history, retried many times concurrently and in any order, leaves
    the record as one clean run did: never backwards, no duplicates."""
    r, k = store.redis, store.keys
    script = r.register_script(TRANSITION_LUA)
    cid = "race"

    def w(rev, state, **f):
        args = [cid, rev, state, 3600, 9_999_999_999_999]
        for kv in f.items():
            args += list(kv)
        return script(keys=[k.call(cid), k.live], args=args)

    writes = [(1, "live", {"tenant": "acme"}), (2, "", {"secure_input": "1"}), (3, "", {"secure_input": "0"}),
              (4, "ended", {"end_reason": "hangup"})]
    attempts = [w(rev, st, **f) for rev, st, f in writes for _ in range(8)]
    random.Random(7).shuffle(attempts)
    results = [_s(x) for x in await asyncio.gather(*attempts)]
    assert results.count("ok") <= 4 and "ok" in results
    rec = {_s(a): _s(b) for a, b in (await r.hgetall(k.call(cid))).items()}
    assert rec["state"] == "ended" and rec["rev"] == "4" and rec["end_reason"] == "hangup"
    assert await r.zscore(k.live, cid) is None
    # a late retry of the start never resurrects the call
    assert _s(await w(1, "live", tenant="acme")) == "dup"
    assert _s(await w(5, "live")) == "refused"
    assert _s((await r.hgetall(k.call(cid)))[b"state"]) == "ended"

    # the events script: the same batch retried concurrently lands once
    ev = r.register_script(EVENTS_LUA)
    keys = [k.events, k.call_events(cid), k.call(cid), k.transcript(cid)]
    payload = [[0, seq, ["seq", str(seq), "type", "x"], []] for seq in (1, 2, 3)]
    args = [3600, 3600, "0-0", json.dumps(payload)]
    written = await asyncio.gather(*[ev(keys=keys, args=args) for _ in range(10)])
    assert sum(int(x) for x in written) == 3
    assert [_s(f[b"seq"]) for _, f in await r.xrange(k.call_events(cid))] == ["1", "2", "3"]


async def test_events_in_order_nothing_lost(store):
    await store.call_started(info("c1"))
    await store.call_started(info("c2"))
    n = 800
    for i in range(n):
        for cid in ("c1", "c2"):
            store.emit(CallerSpeechStart(call_id=cid, t=i * 0.032, confidence=0.5 + (i % 50) / 100))
    assert await store.flush(10)
    for cid in ("c1", "c2"):
        entries = await store.redis.xrange(store.keys.call_events(cid))
        assert [int(f[b"seq"]) for _, f in entries] == list(range(1, n + 1))
    glob = await store.redis.xrange(store.keys.events)
    assert len(glob) == 2 * n
    per = {"c1": [], "c2": []}
    for _, f in glob:
        per[_s(f[b"call_id"])].append(int(f[b"seq"]))
    assert per["c1"] == list(range(1, n + 1)) == per["c2"]
    assert store.stats()["dropped"] == 0 and store.writer.duplicates == 0


async def test_decisions_and_heard_transcript(store):
    await store.call_started(info("c1"))
    store.emit(EndOfTurn(call_id="c1", t=1.0, confidence=0.87, silence=0.42, policy="duplex"))
    store.emit(BotSpeechStart(call_id="c1", t=1.1, text="Your order ships on Monday", turn=1))
    store.emit(BargeIn(call_id="c1", t=1.6, confidence=0.93, reason="words", policy="duplex", onset=1.45))
    store.emit(BotTruncated(call_id="c1", t=1.6, heard="Your order", unheard="ships on Monday", turn=1))
    store.emit(TranscriptFinal(call_id="c1", t=1.6, text="Your order", speaker="bot"))
    store.emit(TranscriptFinal(call_id="c1", t=2.0, text="wait, which order?"))
    assert await store.flush(5)
    ev = [{_s(a): _s(b) for a, b in f.items()} for _, f in await store.redis.xrange(store.keys.call_events("c1"))]
    assert [(e["type"], e["decision"] or None, e["confidence"] or None) for e in ev] == [
        ("end_of_turn", "take_turn", "0.87"), ("bot_speech_start", None, None), ("barge_in", "stop", "0.93"),
        ("bot_truncated", None, None), ("transcript_final", None, None), ("transcript_final", None, None)]
    assert json.loads(ev[2]["data"])["onset"] == 1.45 and ev[2]["policy"] == "duplex"
    tr = [{_s(a): _s(b) for a, b in f.items()} for _, f in await store.redis.xrange(store.keys.transcript("c1"))]
    assert [(t["speaker"], t["text"], t.get("interrupted")) for t in tr] == [
        ("bot", "Your order", "1"), ("caller", "wait, which order?", None)]


async def test_policy_validation_resolution_and_live_update(store):
    with pytest.raises(PolicyError, match="interruption_sensitivity must be in"):
        await store.policies.set(Scope(tenant="acme"), {"interruption_sensitivity": 3})
    assert await store.policies.list() == []
    call = info("c1", tenant="acme", callee="+15550100")
    await store.call_started(call)
    base = await store.policy_for(call)
    assert base.backchannel_mode == "ignore"
    got: list = []
    changed = asyncio.Event()

    def on_change(s):
        got.append(s)
        changed.set()

    unsubscribe = store.watch_policy(call, on_change)
    await asyncio.wait_for(store.watcher.subscribed.wait(), 5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await store.policies.set(Scope(tenant="acme"), {"backchannel": "interrupt", "min_interruption_speech": 0.3})
    await asyncio.wait_for(changed.wait(), 1.0)  # applied within a second
    assert loop.time() - t0 < 1.0
    assert got[-1].backchannel_mode == "interrupt" and got[-1].min_interruption_speech == 0.3
    # the dialled number overrides the tenant; another tenant's change does not touch this call
    changed.clear()
    await store.policies.set(Scope(number="tel:+1 555 0100"), {"min_interruption_speech": 0.8})
    await asyncio.wait_for(changed.wait(), 1.0)
    assert got[-1].min_interruption_speech == 0.8 and got[-1].backchannel_mode == "interrupt"
    n = len(got)
    await store.policies.set(Scope(tenant="zeta"), {"end_of_turn": "fast"})
    await store.policies.set(Scope(tenant="acme"), {"end_of_turn": "fast"})
    await wait_for(lambda: len(got) > n, 1.0, "acme change")
    assert len(got) == n + 1 and got[-1].end_of_turn_silence == 0.3
    resolved = await store.policies.resolve("acme", "+15550100")
    assert resolved.sources["min_interruption_speech"] == "number:+15550100"
    assert resolved.sources["backchannel"] == "tenant:acme" and resolved.sources["speak_over_caller"] == "default"
    listed = await store.policies.list()
    assert [d.get("tenant") or d.get("number") for d in listed] == ["acme", "zeta", "+15550100"]
    await store.policies.clear(Scope(tenant="acme"), ["backchannel"])
    await wait_for(lambda: got[-1].backchannel_mode == "ignore", 1.0, "cleared field")
    unsubscribe()
    n = len(got)
    fence = asyncio.Event()
    store.watch_policy(info("c9", tenant="zeta", callee="+1999"), lambda s: fence.set())
    await store.policies.set(Scope(tenant="acme"), {"backchannel": "interrupt"})
    await store.policies.set(Scope(tenant="zeta"), {"backchannel": "interrupt"})  # handled after acme's
    await asyncio.wait_for(fence.wait(), 1.0)
    assert len(got) == n  # nothing for the unsubscribed call


async def test_secure_input_leaves_no_digits_in_redis(store):
    card = "4929386275410098"
    await store.call_started(info("c1"))
    store.emit(TranscriptFinal(call_id="c1", t=0.5, text="I want to pay"))
    store.set_secure_input("c1", True)
    assert store.is_secure_input("c1")
    for i, d in enumerate(card):
        store.emit(DtmfReceived(call_id="c1", t=1 + i * 0.2, digit=d))
        store.emit(TranscriptPartial(call_id="c1", t=1 + i * 0.2, text=" ".join(card[: i + 1])))
    store.emit(TranscriptFinal(call_id="c1", t=5.0, text=" ".join(card)))
    store.set_secure_input("c1", False)
    store.emit(TranscriptFinal(call_id="c1", t=6.0,
                               text=f"oops I said it again {card[:4]} {card[4:8]} {card[8:12]} {card[12:]}"))
    store.audit("acme", "sup1", "listen", "c1", f"note {card}")
    await store.call_ended("c1", "hangup")
    assert await store.flush(5)
    windows = {card[i:i + 8] for i in range(len(card) - 7)}
    seen = 0
    async for key in store.redis.scan_iter(match=f"{store.settings.prefix}:*"):
        t = _s(await store.redis.type(key))
        if t == "hash":
            blob = json.dumps({_s(a): _s(b) for a, b in (await store.redis.hgetall(key)).items()})
        elif t == "stream":
            blob = json.dumps([[_s(i), {_s(a): _s(b) for a, b in f.items()}] for i, f in await store.redis.xrange(key)])
        elif t == "string":
            blob = _s(await store.redis.get(key))
        elif t == "zset":
            blob = json.dumps([_s(m) for m in await store.redis.zrange(key, 0, -1)])
        else:
            blob = ""
        seen += 1
        assert not any(w in blob for w in windows), (key, blob)
        assert not any(w in _s(key) for w in windows)
    assert seen >= 5
    dtmf = [json.loads(f[b"data"]) for _, f in await store.redis.xrange(store.keys.call_events("c1"))
            if f[b"type"] == b"dtmf"]
    assert len(dtmf) == 16 and all(d["digit"] == "" and d["secure"] for d in dtmf)
    rec = await store.redis.hgetall(store.keys.call("c1"))
    assert rec[b"events_suppressed"] == b"17"


async def test_ttl_on_every_key_class(store):
    await store.call_started(info("c1"))
    store.emit(TranscriptFinal(call_id="c1", t=0.5, text="hello"))
    store.emit(EndOfTurn(call_id="c1", t=1.0, confidence=0.9, silence=0.5, policy="p"))
    store.record_consent("c1", True, "dtmf")
    store.recording_saved("c1", "file:///rec/c1.wav", 12.5)
    store.audit("acme", "sup1", "whisper", "c1", "")
    await store.liveness.beat()
    await store.policies.set(Scope(tenant="acme"), {"backchannel": "interrupt"})
    assert await store.flush(5)
    k, ret = store.keys, store.settings.retention
    expected = {
        k.call("c1"): ret.events, k.call_events("c1"): ret.events, k.events: ret.events, k.live: ret.events,
        k.transcript("c1"): ret.transcripts, k.recording("c1"): ret.recordings, k.audit: ret.audit,
        k.worker("w1"): 1,
    }
    found = set()
    async for raw in store.redis.scan_iter(match=f"{store.settings.prefix}:*"):
        key = _s(raw)
        ttl = await store.redis.ttl(key)
        if key.startswith(f"{store.settings.prefix}:policy:"):
            assert ttl == -1  # configuration, not personal data
            continue
        assert ttl > 0, f"{key} has no TTL"
        if key in expected:
            assert ttl <= expected[key] and ttl >= expected[key] - 5, (key, ttl)
            found.add(key)
        else:
            assert key.startswith(f"{k.audit}:seen:"), key
    assert found == set(expected)


async def test_recording_needs_consent(store):
    await store.call_started(info("c1"))
    with pytest.raises(PermissionError):
        store.recording_saved("c1", "file:///x.wav", 1.0)
    assert not store.may_record("c1")
    store.record_consent("c1", False)
    assert not store.may_record("c1")


async def test_audit_stream(store):
    ids = [store.audit("acme", "sup1", a, "c1", "x") for a in ("listen", "whisper", "take_over")]
    assert await store.flush(5)
    entries = await store.redis.xrange(store.keys.audit)
    assert [(_s(f[b"action"]), _s(f[b"audit_id"])) for _, f in entries] == \
        list(zip(("listen", "whisper", "take_over"), ids))


async def test_consumer_group_ack_and_reclaim(store):
    await store.call_started(info("c1"))
    for i in range(10):
        store.emit(CallerSpeechStart(call_id="c1", t=float(i), confidence=0.9))
    assert await store.flush(5)
    stream = store.keys.events
    a = StreamConsumer(store.redis, stream, "analytics", "a", min_idle=0.05)
    b = StreamConsumer(store.redis, stream, "analytics", "b", min_idle=0.05)
    await a.ensure_group()
    got_a = await a.read(count=4, block=None)
    assert len(got_a) == 4
    await a.ack([got_a[0][0]])  # then "crashes" with three pending
    seen_b: list[str] = []
    await b._handle(lambda eid, f: seen_b.append(eid), await b.read(count=100, block=None))
    assert len(seen_b) == 6

    async def reclaimed():
        got = await b.claim_stale()
        await b._handle(lambda eid, f: seen_b.append(eid), got)
        return len(seen_b) == 9

    await wait_for(reclaimed, 3.0, "stale entries reclaimed")
    all_ids = [_s(i) for i, _ in await store.redis.xrange(stream)]
    assert sorted(seen_b + [got_a[0][0]]) == sorted(all_ids)
    pending = await store.redis.xpending(stream, "analytics")
    assert pending["pending"] == 0


async def test_http_routes(store):
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from bot.routes.state import setup

    class Rt:
        state = store

    app = web.Application()
    setup(app, Rt())
    await store.policies.set(Scope(tenant="acme"), {"backchannel": "interrupt"})
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/api/policy", params={"tenant": "acme", "number": "+15550100"})
        body = await r.json()
        assert r.status == 200 and body["policy"]["backchannel"] == "interrupt"
        assert body["settings"]["backchannel_mode"] == "interrupt" and body["sources"]["backchannel"] == "tenant:acme"
        r = await client.get("/api/state/stats")
        assert (await r.json())["connected"] is True


async def test_global_stream_is_capped(settings):
    import dataclasses

    from bot.state.store import CallStore

    store = await CallStore.open(dataclasses.replace(settings, global_maxlen=100))
    try:
        await store.call_started(info("c1"))
        for i in range(1000):
            store.emit(CallerSpeechStart(call_id="c1", t=i * 0.01, confidence=0.9))
        assert await store.flush(10)
        assert await store.redis.xlen(store.keys.call_events("c1")) == 1000  # the call keeps its history
        assert await store.redis.xlen(store.keys.events) < 400  # approximate trimming, whole nodes
    finally:
        await store.close()


async def test_consumer_run_loop_takes_over_a_crashed_consumer(store):
    from bot.state.tasks import stop_task

    await store.call_started(info("c1"))
    for i in range(20):
        store.emit(CallerSpeechStart(call_id="c1", t=float(i), confidence=0.9))
    assert await store.flush(5)
    stream = store.keys.call_events("c1")
    crashed = StreamConsumer(store.redis, stream, "export", "crashed", min_idle=0.05)
    await crashed.ensure_group()
    taken = await crashed.read(count=5, block=None)  # delivered, never acknowledged: it "crashed"
    assert len(taken) == 5
    seen: list[str] = []
    survivor = StreamConsumer(store.redis, stream, "export", "survivor", min_idle=0.05)
    task = asyncio.create_task(survivor.run(lambda eid, f: seen.append(eid), block=0.05, claim_every=0.05))
    try:
        await wait_for(lambda: len(seen) == 20, 5.0, "every entry handled once")
    finally:
        await stop_task(task)
    assert sorted(seen) == sorted(_s(i) for i, _ in await store.redis.xrange(stream))
    assert (await store.redis.xpending(stream, "export"))["pending"] == 0
    assert task.done()
