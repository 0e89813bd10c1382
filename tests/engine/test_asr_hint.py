"""The recogniser's hints: a call that asked for a number gets a decoder prompted for digits, in the
same batch as calls that did not (real tiny.en, a number read by hibari over mu-law)."""
from __future__ import annotations

import numpy as np
import pytest

from bot.services.asr import AsrSettings, WhisperAsr
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
