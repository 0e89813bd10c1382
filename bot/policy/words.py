"""Word lists and tests on what the caller said, shared by every policy and the engine.

- backchannels ("mm-hmm", "yeah", "right"): over bot speech the bot keeps talking;
- interruption words ("wait", "stop", ...): they stop the bot on their own; weak ones ("no", "but")
  only with company ("no" alone is also what tiny.en makes of a murmured "mm-hmm"; "no, wait"
  still stops at "wait").
"""
from __future__ import annotations

import re

BACKCHANNEL_WORDS = frozenset("""mm mhm hmm mmhmm mm-hmm uh-huh uhhuh huh yeah yes yep yup yea right okay ok
sure alright aha ah oh uh um hm mmm great cool nice good fine see got it i""".split())
INTERRUPT_WORDS = frozenset("wait stop hold hang excuse sorry pardon listen cancel hey".split())
WEAK_INTERRUPT_WORDS = frozenset("no nope but actually what".split())


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z0-9'\-]+", text.lower())


def is_backchannel_text(text: str) -> bool:
    ws = words_of(text)
    return all(w in BACKCHANNEL_WORDS for w in ws) and len(ws) <= 4


def has_interrupt_word(text: str) -> bool:
    ws = words_of(text)
    return any(w in INTERRUPT_WORDS for w in ws) or (len(ws) >= 2 and any(w in WEAK_INTERRUPT_WORDS for w in ws))


def has_stop_word(text: str) -> bool:
    """A word that asks the bot to stop on its own ("wait", "stop", "hold on", "sorry")."""
    return any(w in INTERRUPT_WORDS for w in words_of(text))
