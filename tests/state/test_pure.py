"""Pure parts of the state package: redaction, policy validation and mapping, the event-log core."""
from __future__ import annotations

import json

import pytest

from bot.engine.events import (
    BargeIn,
    BotSpeechStart,
    BotSpeechStop,
    BotTruncated,
    DtmfReceived,
    EndOfTurn,
    TranscriptFinal,
    TranscriptPartial,
)
from bot.policy.base import PolicySettings
from bot.state.eventlog import CallOp, EventLog, EventOp
from bot.state.policy import BargeInPolicy, PolicyError, decode_overrides, parse_assignment, validate_overrides
from bot.state.policy_store import Scope, normalise_number
from bot.state.redact import redact
from bot.state.scripts import next_state
from bot.state.settings import Retention, StateSettings


@pytest.mark.parametrize("text,expected", [
    ("my card is 4111 1111 1111 1111 thanks", "my card is [redacted] thanks"),
    ("4111-1111-1111-1111", "[redacted]"),
    ("card 4111111111111111.", "card [redacted]."),
    ("four one one one one one one one one one one one one one one one", "[redacted]"),
    ("double four one one one one one one one one one one one", "[redacted]"),
    ("call me at 555 1234 at 10.30", "call me at 555 1234 at 10.30"),
    ("oh one two", "oh one two"),
    ("", ""),
])
def test_redact(text, expected):
    assert redact(text) == expected


def test_policy_defaults_map_to_settings():
    s = BargeInPolicy().to_settings()
    assert isinstance(s, PolicySettings)
    assert s.min_interruption_speech == 0.5 and s.backchannel_mode == "ignore" and s.allow_overlap is False
    fast = BargeInPolicy(end_of_turn="fast", interruption_sensitivity=0.9).to_settings()
    slow = BargeInPolicy(end_of_turn="accurate", interruption_sensitivity=0.1).to_settings()
    assert fast.end_of_turn_silence < s.end_of_turn_silence < slow.end_of_turn_silence
    assert fast.interrupt_threshold < slow.interrupt_threshold
    assert BargeInPolicy(speak_over_caller=True, backchannel="interrupt").to_settings().allow_overlap


@pytest.mark.parametrize("over,msg", [
    ({"interruption_sensitivity": 1.5}, "interruption_sensitivity must be in [0, 1]"),
    ({"interruption_sensitivity": "high"}, "must be a number"),
    ({"min_interruption_speech": 0}, "min_interruption_speech must be in"),
    ({"backchannel": "maybe"}, "backchannel must be one of ignore, interrupt"),
    ({"end_of_turn": "slow"}, "end_of_turn must be one of fast, balanced, accurate"),
    ({"speak_over_caller": 1}, "must be true or false"),
    ({"max_bot_monologue": float("nan")}, "must be a number"),
    ({"colour": "red"}, "unknown policy field 'colour'"),
])
def test_policy_validation_errors_are_clear(over, msg):
    with pytest.raises(PolicyError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        validate_overrides(over)


def test_parse_assignment_and_decode():
    assert parse_assignment("interruption-sensitivity=0.7") == ("interruption_sensitivity", 0.7)
    assert parse_assignment("speak_over_caller=yes") == ("speak_over_caller", True)
    assert parse_assignment("end_of_turn=fast") == ("end_of_turn", "fast")
    with pytest.raises(PolicyError, match="expected field=value"):
        parse_assignment("end_of_turn")
    # a field a newer version wrote is ignored, not fatal
    assert decode_overrides(json.dumps({"backchannel": "interrupt", "future_knob": 3})) == {"backchannel": "interrupt"}


def test_scope_and_numbers():
    assert normalise_number("tel:+1 (555) 010-0100") == "+15550100100"
    assert normalise_number("sip:+15550100@trunk.example;user=phone") == "+15550100"
    with pytest.raises(PolicyError):
        Scope()
    with pytest.raises(PolicyError):
        Scope(tenant="a", number="1")


def test_settings_validation_and_env():
    with pytest.raises(ValueError):
        StateSettings(heartbeat_interval=5, heartbeat_ttl=1)
    with pytest.raises(ValueError):
        Retention(events=0)
    s = StateSettings.from_env({"REDIS_URL": "redis://x:1/0", "DUPLEXBOT_RETENTION_EVENTS": "60",
                                "DUPLEXBOT_WORKER_ID": "w9", "DUPLEXBOT_RECORDING": "1"})
    assert s.redis_url == "redis://x:1/0" and s.retention.events == 60 and s.worker_id == "w9" and s.recording_enabled
    assert StateSettings.from_env({}).redis_url is None
    with pytest.raises(ValueError, match="DUPLEXBOT_RETENTION_AUDIT"):
        StateSettings.from_env({"DUPLEXBOT_RETENTION_AUDIT": "a year"})


def test_transition_table():
    assert next_state("", "live") == "live"
    assert next_state("live", "ended") == "ended"
    assert next_state("", "ended") == "ended"
    assert next_state("ended", "live") is None
    assert next_state("ended", "") is None
    assert next_state("live", "") == "live"


def test_eventlog_sequences_decisions_and_bounds():
    log = EventLog(buffer_max=3, clock=lambda: 1000.0)
    log.transition("c1", "live", {"tenant": "t"})
    a = log.add(EndOfTurn(call_id="c1", t=1.0, confidence=0.9, silence=0.4, policy="duplex"))
    b = log.add(BargeIn(call_id="c1", t=2.0, confidence=0.8, reason="words", policy="duplex", onset=1.8))
    assert log.add(BargeIn(call_id="c2", t=2.0, confidence=0.8, reason="x", policy="p", onset=1.0)) is not None
    assert log.add(BargeIn(call_id="c1", t=3.0, confidence=0.8, reason="x", policy="p", onset=1.0)) is None
    assert log.dropped == 1 and log.dropped_by_type == {"barge_in": 1}
    assert (a.seq, b.seq) == (1, 2)
    assert a.fields["decision"] == "take_turn" and a.fields["confidence"] == "0.9" and a.fields["ts"] == "1000000"
    assert b.fields["decision"] == "stop"
    first = log.peek(10)
    assert len(first) == 1 and isinstance(first[0], CallOp)  # the call op goes alone, first
    log.commit(1)
    batch = log.peek(10)
    assert [op.seq for op in batch if isinstance(op, EventOp)] == [1, 2, 1]
    log.commit(len(batch))
    assert len(log) == 0 and log.events_pending == 0


def test_eventlog_transcript_keeps_only_what_was_heard():
    """The engine's sequence (bot/engine/session.py): a finished bot turn ends with a bot
    transcript_final of its text; an interrupted one with bot_truncated, then a bot
    transcript_final of the heard part."""
    log = EventLog(buffer_max=100)
    ops = [
        log.add(TranscriptFinal(call_id="c", t=1.0, text="hi, my card is 4111 1111 1111 1111")),
        log.add(BotSpeechStart(call_id="c", t=1.5, text="Thanks.", turn=1)),
        log.add(BotSpeechStop(call_id="c", t=2.5, reason="done", turn=1)),
        log.add(TranscriptFinal(call_id="c", t=2.5, text="Thanks. Let me read the terms to you now.", speaker="bot")),
        log.add(BotSpeechStart(call_id="c", t=3.0, text="Your balance is twelve dollars and", turn=2)),
        log.add(BotSpeechStop(call_id="c", t=3.4, reason="barge_in", turn=2)),
        log.add(BotTruncated(call_id="c", t=3.4, heard="Your balance", unheard="is twelve dollars and", turn=2)),
        log.add(TranscriptFinal(call_id="c", t=3.4, text="Your balance", speaker="bot")),
        log.add(TranscriptPartial(call_id="c", t=3.6, text="wait")),
        log.add(TranscriptFinal(call_id="c", t=3.9, text="wait, what?")),
    ]
    lines = [op.transcript for op in ops if op.transcript]
    assert [(ln["speaker"], ln["text"], ln.get("interrupted")) for ln in lines] == [
        ("caller", "hi, my card is [redacted]", None),
        ("bot", "Thanks. Let me read the terms to you now.", None),
        ("bot", "Your balance", "1"),
        ("caller", "wait, what?", None),
    ]
    assert "4111" not in ops[0].fields["data"]


def test_eventlog_secure_input_blanks_digits_and_transcripts():
    log = EventLog(buffer_max=100)
    assert log.set_secure("c", True) and not log.set_secure("c", True)
    assert log.add(TranscriptPartial(call_id="c", t=1.0, text="four one")) is None
    assert log.add(TranscriptFinal(call_id="c", t=1.0, text="four one one")) is None
    op = log.add(DtmfReceived(call_id="c", t=1.2, digit="4"))
    assert json.loads(op.fields["data"])["digit"] == "" and "4" not in op.fields["data"].split("digit")[1][:5]
    assert log.suppressed == 2
    log.set_secure("c", False)
    assert json.loads(log.add(DtmfReceived(call_id="c", t=2.0, digit="1")).fields["data"])["digit"] == "1"


def test_eventlog_seq_survives_call_end():
    log = EventLog(buffer_max=100)
    log.add(EndOfTurn(call_id="c", t=1.0, confidence=0.9, silence=0.4, policy="p"))
    log.forget("c")
    assert log.add(EndOfTurn(call_id="c", t=2.0, confidence=0.9, silence=0.4, policy="p")).seq == 2


def test_fast_event_dict_matches_to_dict():
    from bot.state.eventlog import _event_dict

    for ev in (BargeIn(call_id="c", t=1.23456789, confidence=0.5, reason="r", policy="p", onset=1.0),
               BotTruncated(call_id="c", t=2.0, heard="a", unheard="b", turn=3),
               DtmfReceived(call_id="c", t=0.1, digit="5")):
        assert _event_dict(ev) == ev.to_dict()


def test_embedded_server_picks_another_port_when_its_port_is_taken():
    import socket

    from bot.state.embedded import EmbeddedValkey

    e = EmbeddedValkey()
    with socket.socket() as s:
        s.bind(("127.0.0.1", e.port))
        s.listen()
        taken = e.port
        e.start_sync()
        try:
            assert e.port != taken and e.server.is_running()
        finally:
            e.stop_sync()
