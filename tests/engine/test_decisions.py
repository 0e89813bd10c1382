"""Decisions are typed: one `DecisionKind` enum, the same strings on the wire, one handler each."""
import json
from dataclasses import asdict

from bot.engine.session import CallSession
from bot.policy import CHUNK_SECONDS, Decision, DecisionKind, Observation, VadTimeoutPolicy


def test_kinds_are_their_strings():
    assert DecisionKind.END_OF_TURN == "end_of_turn"
    assert str(DecisionKind.TRANSCRIBE_OVERLAP) == "transcribe_overlap"
    assert f"{DecisionKind.INTERRUPT}" == "interrupt"
    d = Decision(DecisionKind.HOLD, 1.0, reason="p(hold)=0.90")
    assert json.loads(json.dumps(asdict(d)))["kind"] == "hold"
    assert DecisionKind("backchannel_opportunity") is DecisionKind.BACKCHANNEL_OPPORTUNITY


def test_the_session_handles_every_kind():
    assert set(CallSession.DECISION_HANDLERS) == set(DecisionKind)


def test_policies_return_enum_members():
    p = VadTimeoutPolicy()
    out, t = [], 0.0
    for vad, secs in [(0.9, 0.5), (0.0, 1.0)]:
        for _ in range(round(secs / CHUNK_SECONDS)):
            t += CHUNK_SECONDS
            out += p.step(Observation(t=t, vad=vad, bot_speaking=False))
    assert [d.kind for d in out] == ["speech_start", "speech_end", "end_of_turn"]
    assert all(type(d.kind) is DecisionKind for d in out)
