"""The answer-stage histograms (bot/engine/turn_timing.py) from a call's events."""
from prometheus_client import REGISTRY

from bot.engine import events as ev
from bot.engine.turn_timing import TurnTiming


def _stage(stage: str) -> tuple[float, float]:
    get = REGISTRY.get_sample_value
    labels = {"stage": stage}
    return (get("duplexbot_turn_stage_seconds_sum", labels) or 0.0,
            get("duplexbot_turn_stage_seconds_count", labels) or 0.0)


def test_each_answer_is_split_at_the_decision():
    before = {k: _stage(k) for k in ("decide", "answer", "words")}
    tt = TurnTiming()
    tt(ev.CallerSpeechStart(call_id="c", t=1.0, confidence=0.9))
    tt(ev.CallerSpeechEnd(call_id="c", t=2.0, speech_started=1.0))
    tt(ev.TranscriptPartial(call_id="c", t=2.15, text="Where is the store?", complete=0.9))
    tt(ev.TranscriptPartial(call_id="c", t=2.2, text="Where is the store?", complete=0.9))  # one per pause
    tt(ev.EndOfTurn(call_id="c", t=2.2, confidence=0.9, silence=0.2, policy="duplex"))
    tt(ev.BotSpeechStart(call_id="c", t=2.45, text="It is on Main Street.", turn=1))
    tt(ev.BotSpeechStart(call_id="c", t=5.0, text="Anything else?", turn=2))  # no decision before it
    # an end of turn cut short by a barge-in is never answered
    tt(ev.EndOfTurn(call_id="c", t=6.0, confidence=0.9, silence=0.3, policy="duplex"))
    tt(ev.BargeIn(call_id="c", t=6.1, confidence=0.9, reason="words", policy="duplex", onset=6.05))
    tt(ev.BotSpeechStart(call_id="c", t=6.5, text="Sorry?", turn=3))
    after = {k: _stage(k) for k in before}
    d = {k: (after[k][0] - before[k][0], after[k][1] - before[k][1]) for k in before}
    assert d["words"][1] == 1 and abs(d["words"][0] - 0.15) < 1e-9
    assert d["decide"][1] == 2 and abs(d["decide"][0] - 0.5) < 1e-9
    assert d["answer"][1] == 1 and abs(d["answer"][0] - 0.25) < 1e-9
