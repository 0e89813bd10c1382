"""The recogniser's hints: a call that asked for a number gets a decoder prompted for digits, in the
same batch as calls that did not (real tiny.en, a number read by hibari over mu-law)."""
from __future__ import annotations

import numpy as np
import pytest

from bot.audio import resample
from bot.services.asr import AsrSettings, WhisperAsr
from sip.g711 import ulaw_decode, ulaw_encode
from tests.web.voices import say


@pytest.fixture(scope="module")
def asr():
    a = WhisperAsr(AsrSettings(workers=1))
    yield a
    a.close()


def _phone(x: np.ndarray, rate: int) -> np.ndarray:
    pcm = np.clip(resample(x, rate, 8000) * 32768, -32768, 32767).astype(np.int16)
    return resample(ulaw_decode(ulaw_encode(pcm)).astype(np.float32) / 32768, 8000, 16000)


def test_digits_hint_in_a_mixed_batch(asr):
    number = _phone(say("four, two, seven, nine, one, three", 16000), 16000)
    question = _phone(say("Where is the nearest store?", 16000), 16000)
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
