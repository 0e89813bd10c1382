"""A bot that asks for a number of known length: its agent declares `expect_digits`, the call's
policy holds the caller's number until that many digits are heard and then answers at once
(real models, the scripted caller, in-process transport)."""

from bot.engine import events as ev
from bot.policy.fusion import FusionSettings
from bot.runtime import Runtime
from bot.services.responder import ResponderSettings
from bot.settings import Settings
from bot.sim.caller import simulate
from bot.sim.script import parse_script

AGENT = """name: Orders
greeting: "Hello, how can I help?"
fallbacks: ["Thank you."]
faq:
  - id: status
    keywords: [order, status]
    answer: "Sure. What is your six digit order number?"
    expect_digits: 6
"""


async def test_the_number_asked_for_is_awaited_and_the_ask_lasts_one_turn(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    agent = tmp_path / "agent.yaml"
    agent.write_text(AGENT)
    rt = await Runtime.start(Settings.for_tests(responder=ResponderSettings(agent_path=str(agent))))
    try:
        script = parse_script({"steps": [
            {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.4},
            {"say": "What is the status of my order?"}, {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.4},
            {"say": "six five two"}, {"pause": 0.7}, {"say": "three zero zero"},
            {"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.4}, {"hangup": True}]})
        result = await simulate(rt, script, fast=True, call_id="digits-1")
    finally:
        await rt.close()
    events = result.events
    asked = [i for i, e in enumerate(events) if isinstance(e, ev.Action) and e.name == "expect_digits"]
    assert asked and events[asked[0]].target == "6" and events[asked[0]].ok
    after = events[asked[0]:]
    ends = [e for e in after if isinstance(e, ev.EndOfTurn)]
    starts = [e.t for e in after if isinstance(e, ev.CallerSpeechStart)]
    stops = [e.t for e in after if isinstance(e, ev.CallerSpeechEnd)]
    gaps = [b - max(a for a in stops if a < b) for b in starts[1:]]
    # the pause between the groups (about 1.4 s with the simulator's padding) is longer than a group
    # of digits is ever waited for without the ask
    assert len(starts) == 2 and gaps and gaps[0] > FusionSettings().digits_silence + 0.15, gaps
    # one end of turn for the whole number, after its second group, naming what was asked for
    assert len(ends) == 1 and ends[0].t > starts[1], [(e.t, e.reason) for e in ends]
    assert "6 asked for" in ends[0].reason or "of 6 digits" in ends[0].reason, ends[0].reason
    # the number's words were recognised as digits (the recogniser was prompted for them)
    finals = [e.text for e in after if isinstance(e, ev.TranscriptFinal) and e.speaker == "caller"]
    assert finals and "".join(c for c in finals[0] if c.isdigit()) == "652300", finals


async def test_a_call_placed_to_take_a_number_holds_its_first_turn_for_it(tmp_path, monkeypatch):
    from bot.engine.port import EXPECT_DIGITS, CallInfo
    from bot.transports.sim import SimTransport
    monkeypatch.delenv("REDIS_URL", raising=False)
    rt = await Runtime.start(Settings.for_tests())
    try:
        for extra, want in (({EXPECT_DIGITS: "8"}, 8), ({}, 0), ({EXPECT_DIGITS: "lots"}, 0)):
            session = rt.calls.start(SimTransport(CallInfo(call_id=f"n-{want}-{len(extra)}", transport="sim",
                                                           extra=extra)))
            assert getattr(session.policy, "digits_expected", None) == want, extra
            assert session.asr_hint == ("digits" if want else ""), extra  # the recogniser is told too
            await session.hangup()
            assert session.task is not None
            await session.task
    finally:
        await rt.close()
