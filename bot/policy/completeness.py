"""Is what the caller said so far a finished turn? Evidence from the words, for any voice.

At each pause the engine transcribes speculatively (Whisper tiny.en, batched across calls). Two
signals come out of that transcript, and neither depends on the caller's voice the way the duplex
model's acoustic heads do (they were learned from our synthetic voices only):

- `p_final`: the ASR decoder's own probability of a sentence-final mark right after the last word
  it heard (see `bot/services/asr.py`). Whisper learned punctuation from 680k hours of real speech,
  so this carries syntax and some prosody ("Where is the store?" 0.92; "I would like to order" 0.20;
  "I was wondering if..." 0.10, measured with espeak voices).
- the last word: a turn almost never ends on an article, a possessive, a conjunction, "to" or a
  filler ("So do you play basketball on the", "I need to talk to"); Whisper sometimes still puts a
  question mark there, so the lexicon caps what `p_final` can claim.

`text_completeness` fuses them into one probability that the turn is complete.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# a turn practically never ends on these: the caller is mid-phrase
DANGLING = frozenset("""a an the my your our their his her its and or but nor because if whether than to of
um uh er erm uhm every each very""".split())
# these end turns now and then ("what is it for?", "who are you with?", "should I buy some?", "I think
# so") but mostly mean more is coming
WEAK_ENDINGS = frozenset("""on in at for with from about into onto by is are was were be been am can could would
should will shall do does did have has had i we they he she you're i'm it's there's that's so that when
where while although though until unless since after before some any no just quite also like then as which
whose""".split())
TRAILING_OPEN = ("...", "\u2026", ",", "-", "\u2014", ":", ";")
# a turn that ends on a filler is a caller thinking aloud, not done ("the reason I'm calling is, you know")
FILLER_ENDINGS = ("you know", "let me see", "let me think", "i mean", "well", "like", "kind of", "sort of")
_WORD = re.compile(r"[a-z0-9']+")
# a turn made only of these is a whole answer ("Yes.", "No thanks.", "That's right."): real callers'
# bare answers get p_final ~0.6 from tiny.en and "No" often no full stop (docs/real-speech.md)
ANSWER_ENDS = frozenset("""yes yeah yep yup no nope nah sure okay ok correct right exactly absolutely definitely
thanks you please course really fine great perfect alright""".split())
ANSWER_WORDS = ANSWER_ENDS | {"thank", "of", "not", "that's", "thats"}
_PAIRED_ENDS = frozenset({"you", "course", "really"})  # answers only with their first word ("thank you")
# a caller reading out a number says it in groups ("six five two | three zero zero"): a pause after
# a group is as likely a breath before the next one as the end, whatever mark tiny.en puts there
DIGIT_WORDS = frozenset("""zero oh one two three four five six seven eight nine ten eleven twelve
double triple hundred""".split())
_DIGITS_MIN = 3  # this many digits at the end of a turn make it a number being read out
MAX_EXPECTED_DIGITS = 32  # the longest number an agent or a call may declare (expect_digits)


@dataclass(frozen=True, slots=True)
class WordEvidence:
    """What the words say about a pause: the transcript of the caller's turn up to the pause at
    stream time `end`, and its completeness (0 = clearly unfinished, 1 = clearly finished)."""
    text: str
    p_final: float | None  # the ASR decoder's end-of-sentence probability (None: it gave none)
    complete: float  # `text_completeness(text, p_final)`
    end: float  # stream time the caller's speech paused (the speech_end this transcript covers)
    t: float = 0.0  # stream time the evidence became available
    # the voice's evidence that the caller goes on (bot/services/prosody.py); None without a probe
    p_continue: float | None = None
    open_ending: bool = False  # the phrase ends on a dangling or weak word, a filler or an open mark
    digits: bool = False  # the phrase ends on a group of digits: the next group may follow
    digit_count: int = 0  # digits at the end of the phrase, across groups ("652, 300": 6)
    # digits the bot asked for ("your 8-digit order number": 8), 0 = none declared (the agent's
    # `expect_digits`, or the call's; bot/policy/duplex.py DuplexPolicy.expect_digits)
    digits_expected: int = 0
    # the recogniser wrote more digits than the caller had time to say (`digit_count` is capped):
    # it repeated some, so the count says little about which digits are missing
    digits_capped: bool = False
    # the recogniser's mean token log-prob for `text` (None: not known): how far its words can be trusted
    score: float | None = None


def _ending(text: str) -> tuple[str, list[str], bool]:
    """The stripped text, its words, and whether it ends on an open mark or a filler."""
    stripped = text.strip()
    words = _WORD.findall(stripped.lower())
    tail = " ".join(words[-3:])
    trailing = stripped.endswith(TRAILING_OPEN) or any(tail == f or tail.endswith(" " + f) for f in FILLER_ENDINGS)
    return stripped, words, trailing


def open_ending(text: str) -> bool:
    """Whether the phrase's own shape says it may be unfinished: it ends on a dangling or weak word
    ("to", "the", "about", "is"), a filler ("you know") or an open mark (",", "...")."""
    _, words, trailing = _ending(text)
    return bool(words) and (trailing or words[-1] in DANGLING or words[-1] in WEAK_ENDINGS)


def is_bare_answer(text: str) -> bool:
    """A turn made only of an answer ("Yes.", "No thanks", "That's right"), whatever its marks."""
    words = _WORD.findall(text.lower())
    return 0 < len(words) <= 3 and all(w in ANSWER_WORDS for w in words) and words[-1] in ANSWER_ENDS \
        and not (len(words) == 1 and words[0] in _PAIRED_ENDS)


def text_completeness(text: str, p_final: float | None) -> float:
    """Probability that `text` is a complete turn, from the decoder's end-of-sentence probability
    and the shape of the ending. Empty text (no words heard) is 0.5: no evidence either way, and so
    is a decoder that gave no probability (only the ending's shape counts then)."""
    _, words, trailing = _ending(text)
    if not words:
        return 0.5
    p = 0.5 if p_final is None else min(1.0, max(0.0, float(p_final)))
    if trailing:
        p = min(p, 0.15)
    elif is_bare_answer(text):
        return max(p, 0.9)  # a bare answer is a whole turn
    if words[-1] in DANGLING:
        p *= 0.2
    elif words[-1] in WEAK_ENDINGS:
        p *= 0.5
    return p


def trailing_digits(text: str) -> int:
    """How many digits the phrase ends on, across groups and marks ("... is 652, 300": 6, "six five
    two": 3, "4111-1111": 8, "I have 2 dogs": 0): numerals and digit words ("oh", "double" count one)."""
    n = 0
    for tok in reversed(re.findall(r"[A-Za-z']+|[0-9]+", text)):
        if tok.isdigit():
            n += len(tok)
        elif tok.lower() in DIGIT_WORDS:
            n += 1
        else:
            break
    return n


def ends_on_digits(text: str) -> bool:
    """Whether the phrase ends on a read-out number of at least 3 digits ("... is 652, 300",
    "six five two", "4111-1111")."""
    return trailing_digits(text) >= _DIGITS_MIN


def evidence(text: str, p_final: float | None, end: float, t: float = 0.0,
             p_continue: float | None = None, digits_expected: int = 0, score: float | None = None) -> WordEvidence:
    n = trailing_digits(text)
    return WordEvidence(text, p_final, text_completeness(text, p_final), end, t, p_continue, open_ending(text),
                        n >= _DIGITS_MIN, n, digits_expected, score=score)
