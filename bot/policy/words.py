"""Word lists and tests on what the caller said, shared by every policy and the engine.

- backchannels ("mm-hmm", "yeah", "right"): over bot speech the bot keeps talking;
- interruption words ("wait", "stop", ...): they stop the bot on their own; weak ones ("no", "but")
  only with company ("no" alone is also what tiny.en makes of a murmured "mm-hmm"; "no, wait"
  still stops at "wait");
- words that take the floor: anything else a caller says over the bot ("my address is", "step",
  what tiny.en makes of a real "stop" it mishears) is an interruption; the neutral words below
  are not, they are what tiny.en makes of a murmur or a cough ("you", "bye", "no").
"""
from __future__ import annotations

import re

BACKCHANNEL_WORDS = frozenset("""mm mhm hmm mmhmm mm-hmm uh-huh uhhuh huh yeah yes yep yup yea right okay ok
sure alright aha ah oh uh um hm mmm great cool nice good fine see got it i""".split())
INTERRUPT_WORDS = frozenset("wait stop hold hang excuse sorry pardon listen cancel hey".split())
WEAK_INTERRUPT_WORDS = frozenset("no nope but actually what".split())
# neither a backchannel nor an interruption on their own: tiny.en's usual words for a murmur, a cough
# or a short unclear sound, and the hallucinations it falls into on near-silence
NEUTRAL_WORDS = frozenset("no you bye thank thanks the a and so".split())


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


def takes_floor(text: str) -> bool:
    """Words over the bot that are not a backchannel: the caller wants to speak ("my address is",
    "wait"). Backchannels and neutral words alone ("yeah", "mm-hmm", "you", "no") do not."""
    ws = words_of(text)
    return bool(ws) and not all(w in BACKCHANNEL_WORDS or w in NEUTRAL_WORDS for w in ws)
