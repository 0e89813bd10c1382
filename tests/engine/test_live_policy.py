"""A barge-in policy change in Redis reaches a live call within a second (embedded Valkey)."""
import asyncio
import time
from dataclasses import replace

from bot.engine import events as ev
from bot.runtime import Runtime
from bot.settings import Settings
from bot.sim.caller import simulate
from bot.sim.script import parse_script
from bot.state.policy_store import Scope


async def next_event(q, pred, timeout):
    async def loop():
        while True:
            e = await q.get()
            if pred(e):
                return e
    return await asyncio.wait_for(loop(), timeout)


async def test_policy_change_applies_to_a_live_call_within_a_second(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    rt = await Runtime.start(replace(Settings.for_tests(), state_enabled=True))
    try:
        script = parse_script({"steps": [
            {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.4},
            {"say": "How long does delivery take?"}, {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5},
            {"hangup": True}]})
        call = asyncio.create_task(simulate(rt, script, fast=False, call_id="live-policy-1"))
        while rt.calls.get("live-policy-1") is None:
            await asyncio.sleep(0)  # yield until the call registers (no timing involved)
        session = rt.calls.get("live-policy-1")
        applied = []
        original = session.update_policy
        monkeypatch.setattr(session, "update_policy", lambda s: (applied.append(time.monotonic()), original(s)))
        q = session.subscribe()
        await next_event(q, lambda e: isinstance(e, ev.BotSpeechStart) and e.turn == 2, 20)
        t_set = time.monotonic()
        await rt.state.policies.set(Scope(tenant="default"), {"max_bot_monologue": 3.0})
        stop = await next_event(q, lambda e: isinstance(e, ev.BotSpeechStop), 10)
        assert applied and applied[0] - t_set < 1.0
        assert session.policy.settings.max_bot_monologue == 3.0
        assert stop.reason == "max_monologue"
        result = await asyncio.wait_for(call, 30)
        cut = next(e for e in result.events if isinstance(e, ev.BotTruncated))
        assert cut.heard and "tracking link" in cut.unheard
    finally:
        await rt.close()
