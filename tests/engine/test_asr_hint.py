"""The recogniser's hints: a call that asked for a number gets a decoder prompted for digits, in the
same batch as calls that did not (real tiny.en, a number read by hibari over mu-law)."""
from __future__ import annotations

import numpy as np
import pytest

from bot.services.asr import AsrSettings, WhisperAsr, is_silence
from models.audio import telephony
from tests.web.voices import say


@pytest.fixture(scope="module")
def asr():
    a = WhisperAsr(AsrSettings(workers=1))
    yield a
    a.close()


def test_digits_hint_in_a_mixed_batch(asr):
    number = telephony(say("four, two, seven, nine, one, three", 16000), 16000)  # an 8 kHz mu-law leg
    question = telephony(say("Where is the nearest store?", 16000), 16000)
    # prompts of different lengths in one batch (CTranslate2 decodes them in one call per length)
    plain, digits, words = asr.transcribe_batch_sync([number, number, question], ["", "digits", ""])
    assert "".join(c for c in digits.text if c.isdigit()) == "427913", digits.text
    assert plain.text and "store" in words.text.lower(), (plain.text, words.text)
    # the hint is the caller's prompt, not the batch's: alone, the question reads the same
    assert asr.transcribe_sync(question) == words.text


def test_an_unknown_hint_is_a_clear_error(asr):
    with pytest.raises(ValueError, match="unknown ASR hint"):
        asr.submit(np.zeros(16000, np.float32), hint="postcode")
    assert asr.backlog() == 0


def test_a_confident_number_is_not_called_silence():
    s = AsrSettings()
    # tiny.en under the digits prompt: no-speech 0.74 on a clearly read "4 7 2 8 1 1 3 7" (log-prob -0.35)
    assert not is_silence(0.74, -0.35, "digits", s)
    assert is_silence(0.74, -0.35, "", s)  # without a hint the verdict stands ("beep beep" at -0.55)
    assert is_silence(0.74, -1.5, "digits", s)  # an unsure decode of a pause stays silence
    assert not is_silence(0.3, -3.0, "", s)  # under the threshold the words are kept (the policy judges them)
