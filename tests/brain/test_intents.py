"""Partial intents and corrections: pure tests on the detectors the session uses."""
import pytest

from bot.brain.corrections import is_correction
from bot.brain.intents import IntentDetector, load_intents, parse_intents
from bot.services.responder import DEFAULT_AGENT, ConfigError


def test_the_default_agent_declares_intents_and_the_detector_reports_each_once_per_turn():
    d = IntentDetector(load_intents(DEFAULT_AGENT))
    hits = d.detect("I want to speak to a person about my bill")
    assert [h.intent for h in hits] == ["handoff", "payment"] and hits[0].confidence == 0.9
    assert d.detect("I want to speak to a person about my bill please") == []  # already reported
    d.new_turn()
    assert [h.intent for h in d.detect("speak to a person")] == ["handoff"]


def test_confidence_rises_with_more_keywords_and_a_rise_is_reported_again():
    d = IntentDetector(parse_intents([{"name": "complaint", "keywords": ["terrible", "unacceptable", "awful"]}]))
    (first,) = d.detect("this is terrible")
    (second,) = d.detect("this is terrible and unacceptable")
    assert first.confidence == 0.55 and second.confidence == 0.7
    assert d.detect("") == [] and d.detect("the weather is nice") == []


def test_threshold_hides_weak_hits():
    d = IntentDetector(parse_intents([{"name": "cancel", "keywords": ["cancel"], "threshold": 0.6}]))
    assert d.detect("cancel") == []


@pytest.mark.parametrize("bad, match", [
    ({"name": "Bad Name", "keywords": ["x"]}, "name"),
    ({"name": "ok"}, "phrases or keywords"),
    ({"name": "ok", "keywords": "x"}, "keywords"),
    ({"name": "ok", "keywords": ["x"], "threshold": 2}, "threshold"),
    ("nope", "mapping"),
])
def test_bad_declarations_name_the_key(bad, match):
    with pytest.raises(ConfigError, match=match):
        parse_intents([bad])
    with pytest.raises(ConfigError, match="declared twice"):
        parse_intents([{"name": "a", "keywords": ["x"]}, {"name": "a", "keywords": ["y"]}])


@pytest.mark.parametrize("text, yes", [
    ("No, this is running on ECS, not Kubernetes.", True),
    ("No, the sixth.", True),
    ("Actually, make it Tuesday.", True),
    ("It's ECS, not Kubernetes.", True),
    ("I said the sixth", True),
    ("No.", False),  # declining is answered as usual
    ("Why is it not open today?", False),
    ("What are your hours?", False),
    ("Wait, stop.", False),
])
def test_corrections(text, yes):
    assert is_correction(text) is yes
