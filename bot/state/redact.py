"""Redaction of card-number-like digit strings in text (pure; the engine may use it too).

A card number is 13-19 digits, possibly grouped by single spaces, dashes or dots ("4111 1111 1111
1111", "4111-1111-1111-1111"). ASR output may also spell digits out ("four one one one ..."), so
runs of spoken digit words count as well. Any such run of 13 or more digits is replaced by
`[redacted]` whole; shorter runs (times, amounts, phone extensions) are left alone. Phone numbers
(at most 15 digits under E.164) are not distinguished from cards: a 13+ digit run is always
redacted, erring on the side of privacy.
"""
from __future__ import annotations

import re

MIN_CARD_DIGITS = 13
REPLACEMENT = "[redacted]"

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
_WORD = r"(?:zero|oh|o|one|two|three|four|five|six|seven|eight|nine|double|triple)"
# Digits and spoken digit words joined by spaces, commas, dashes or dots.
_MIXED_RUN = re.compile(rf"(?:\d|\b{_WORD}\b)(?:[\s,\-.]*(?:\d|\b{_WORD}\b))+", re.IGNORECASE)


def _count_spoken(run: str) -> int:
    n = 0
    mult = 1
    for tok in re.findall(r"\d|[a-z]+", run.lower()):
        if tok == "double":
            mult = 2
            continue
        if tok == "triple":
            mult = 3
            continue
        if tok.isdigit() or tok in _DIGIT_WORDS:
            n += mult
        mult = 1
    return n


def redact(text: str, min_digits: int = MIN_CARD_DIGITS) -> str:
    """`text` with every card-number-like run of `min_digits`+ digits replaced by `[redacted]`."""
    if not text:
        return text

    def sub(m: re.Match[str]) -> str:
        run = m.group(0)
        return REPLACEMENT if _count_spoken(run) >= min_digits else run

    return _MIXED_RUN.sub(sub, text)

