"""DUPLEXBOT_EVENT_LOG: every call's events as JSON lines, read back by call; a write that fails
is counted, never raised into the call; a path that cannot be written fails at start-up."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config import ConfigError
from bot.engine import events as ev
from bot.engine.event_log import EventLog, read_event_log
from bot.eval.phone_trace import call_trace, join_traces, pause_words, takeover_reasons, unsure_unfinished
from bot.runtime import Runtime
from bot.settings import Settings


def test_events_are_written_and_read_back_by_call(tmp_path):
    log = EventLog(tmp_path / "sub" / "events.jsonl")
    log.emit(ev.CallerSpeechStart(call_id="CA1", t=1.0, confidence=0.9))
    log.emit(ev.EndOfTurn(call_id="CA2", t=2.5, confidence=0.8, silence=0.3, policy="duplex", reason="words"))
    log.emit(ev.CallerSpeechEnd(call_id="CA1", t=1.6, speech_started=1.0))
    log.close()
    with open(tmp_path / "sub" / "events.jsonl", "a") as f:
        f.write("not json\n" + json.dumps(["no", "call"]) + "\n")  # a torn or foreign line is skipped
    by_call = read_event_log(tmp_path / "sub" / "events.jsonl")
    assert [e["type"] for e in by_call["CA1"]] == ["caller_speech_start", "caller_speech_end"]
    assert by_call["CA2"][0]["reason"] == "words" and by_call["CA2"][0]["t"] == 2.5
    assert (log.written, log.dropped) == (3, 0)
    assert read_event_log(tmp_path / "missing.jsonl") == {}


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_failed_write_is_counted_not_raised():
    log = EventLog("/dev/full")  # a real device on which every write fails: No space left on device
    for _ in range(3):
        log.emit(ev.CallerSpeechStart(call_id="CA1", t=2.0, confidence=0.9))  # never raises
    log.flush()
    assert (log.written, log.dropped) == (0, 3)
    log.close()
    log.emit(ev.CallerSpeechStart(call_id="CA1", t=3.0, confidence=0.9))  # after close: counted too
    assert log.dropped == 4


async def test_a_path_that_cannot_be_written_fails_at_start(tmp_path):
    (tmp_path / "file").write_text("")
    settings = Settings.from_env({"DUPLEXBOT_EVENT_LOG": str(tmp_path / "file" / "events.jsonl")})
    with pytest.raises(ConfigError, match="DUPLEXBOT_EVENT_LOG"):
        await Runtime.start(settings)


def test_traces_are_put_on_the_samples_clock_and_explain_a_take_over():
    events = [{"call_id": "CA1", "t": 3.0, "type": "caller_speech_start", "confidence": 0.9},
              {"call_id": "CA1", "t": 3.1, "type": "vad_level"},  # not kept
              {"call_id": "CA1", "t": 6.2, "type": "transcript_partial", "text": "a level of thought?"},
              {"call_id": "CA1", "t": 6.3, "type": "end_of_turn", "reason": "words 0.98: complete"}]
    assert call_trace(events, offset=3.0)[0] == {"t": 0.0, "type": "caller_speech_start", "confidence": 0.9}
    # the words at a pause carry both confidences the fusion read: the words' and the voice's
    # and how sure the recogniser was of them
    words = ev.TranscriptPartial(call_id="CA1", t=6.2, text="a level of thought?", complete=0.98,
                                 p_continue=0.061234, score=-0.41672).to_dict()
    assert words["p_continue"] == 0.061 and words["score"] == -0.417
    assert call_trace([words], offset=3.0)[0] == {"t": 3.2, "type": "transcript_partial", "text": "a level of thought?",
                                                  "complete": 0.98, "p_continue": 0.061, "score": -0.417}
    rows = [{"id": "s-003", "call_id": "CA1", "stream_offset": 3.0, "takeover": True, "first_audible": 3.45,
             "end": 5.0},
            {"id": "s-004", "call_id": "CA9", "stream_offset": 1.0, "takeover": False}]
    assert join_traces(rows, {"CA1": events}) == 1 and "trace" not in rows[1]
    assert [e["type"] for e in rows[0]["trace"]] == ["caller_speech_start", "transcript_partial", "end_of_turn"]
    (line,) = takeover_reasons(rows)
    assert "s-003" in line and "+3.30 s" in line and "complete" in line and "a level of thought" in line


def test_the_words_at_labelled_pauses_and_those_the_recogniser_was_unsure_of():
    def words(t, text, complete, p_continue, score):
        return {"t": t, "type": "transcript_partial", "text": text, "complete": complete, "p_continue": p_continue,
                "score": score}
    rows = [{"id": "pause-015", "end": 3.5, "holds": [[1.2, 1.9]], "trace": [
        words(0.6, "No, no,", 0.2, 0.1, -1.3),  # in speech: neither a hold nor the end
        words(1.25, "... I would have been", 0.25, 0.11, -1.09),  # in the hold, garbled
        words(3.55, "... Who fixed my leader", 0.15, 0.08, -1.2),  # the end, garbled
        {"t": 3.6, "type": "end_of_turn", "reason": "words"}]},
        {"id": "short-001", "end": 2.0, "holds": [], "trace": [
            words(2.04, "Is the soup for", 0.1, 0.3, -1.5),  # a voice going on
            words(2.05, "Is the soup for", 0.1, 0.1, -0.4),  # a recogniser that was sure
            words(2.06, "Is the soup ready?", 0.9, 0.02, -1.5)]}]  # complete words
    found = pause_words(rows)
    assert [(w["id"], w["at"]) for w in found] == \
        [("pause-015", "hold"), ("pause-015", "end")] + [("short-001", "end")] * 3
    assert unsure_unfinished(found) == {"hold": 1, "end": 1}
