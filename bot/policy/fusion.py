"""How long may this pause last before the bot takes the turn? Words, prosody and time, fused.

The duplex model's heads (prosody and timing, learned on synthetic voices) and the words at the
pause (`completeness.WordEvidence`, from Whisper, learned on real speech) are fused into one number,
the pause's *patience*: the caller silence after which the turn ends. The duplex policy asks for it
every silent chunk and ends the turn when the silence reaches it.

- Clear evidence, fast: a complete turn by the words ("Do you live by yourself?") is taken after
  `complete_silence`; the model being sure of an end (p(eot) over its threshold) ends the turn at
  once unless the words say it is unfinished.
- Unclear evidence, patient: unfinished words ("So do you play basketball on the") wait up to
  `incomplete_silence` whatever the voice says (on the synthetic test split, trusting a voice that
  sounded done over unfinished words took over in 74 pauses); words in between leave the decision
  to the model and its own hold-aware fallback. While the pause's transcript is still being
  computed the model alone decides only when it is sure (`sure_eot`): the answer waits for the words
  anyway, so waiting for them costs no time unless they say to wait.
- The voice can veto haste: when the prosody probe on Whisper's encoder (bot/services/prosody.py)
  hears the phrase going on (p(continue) >= `continue_veto`), or the model does (p(hold) >=
  `hold_veto`, unless the probe is sure the voice is done: the model learned synthetic voices, the
  probe Whisper's), even a complete-looking phrase waits `contested_silence` ("Do you live by yourself
  ... or with your family?"). When the voice is sure the phrase is done (p(continue) <=
  `voice_done`), words that are merely unsure are taken after `unsure_done_silence`. Between the
  two (p(continue) over `lean_continue`), complete words that are not a bare answer wait
  `lean_silence`, about the length of a breath pause: the probe calibrated on real speakers puts
  half of our held-out voices' mid-sentence pauses after a whole question there (bench phone
  out/phone-set, 20 calls: take-overs in holds 15 -> 3 of 90, p50 233 -> 259 ms; real set unchanged).
- A number read out in groups ("six five two | three zero zero"): a pause after a group of digits
  is waited `digits_silence` whatever the mark or the voice; the next group usually follows within
  a second (FSDD readers in bot/eval/real_data.py: 0.6-1.0 s). When the bot asked for a number of
  known length (`WordEvidence.digits_expected`, declared by the agent or the call), the count
  decides instead: all the digits heard, the turn is taken after `complete_silence`; fewer, the
  number is unfinished words (`incomplete_silence`: the caller may be reading it off a card), except
  when one digit is missing of four or more (`digits_short_silence`): no one reads a number in a
  last group of one, but tiny.en drops a digit in 3 of the real set's 18 numbers (not when the count
  was capped: a recogniser that repeated digits may as well have missed a group). The
  count is the recogniser's, capped by what the caller had time to say (`min_digit_seconds` a
  digit; the policy caps it): tiny.en repeats digits ("1 5 8 8 8 8" for a group of three) and a
  repeat must not complete the number.
- Unfinished-looking words the recogniser was unsure of (mean token log-prob under
  `unsure_score`), in a voice that does not go on, are taken as unsure words: a voice that is done
  settles them after `unsure_done_silence`, otherwise the model's hold-aware fallback does (no
  longer than `incomplete_silence`). tiny.en garbles voices it finds hard into cut-off phrases, and
  waiting 1.6 s on them was most of our held-out voices' slowest answers.
- Speech the recogniser made no words of (a mumble, digits tiny.en drops): `unheard_silence`;
  the only answer to it is a request to repeat, which can wait.
- No words at all (no transcript for this pause: secure input, ASR failure): the model's own
  hold-aware fallback, as before (`max_end_of_turn_silence`, or `max_hold_silence` in a hold).

Pure functions of their inputs: unit-tested on hand-made cases (tests/models/test_fusion.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import PolicySettings
from .completeness import WordEvidence, is_bare_answer


@dataclass(frozen=True)
class FusionSettings:
    complete: float = 0.6  # completeness at or above this: the words say the turn is finished
    incomplete: float = 0.25  # at or below this: the words say the caller is mid-phrase
    complete_silence: float = 0.1  # seconds: shortest pause taken on complete words
    incomplete_silence: float = 1.6  # seconds: longest pause waited out on unfinished words
    contested_silence: float = 1.2  # complete words, but the model hears the caller going on
    hold_veto: float = 0.8  # p(hold) at which prosody contests complete-looking words
    # the prosody probe's p(continue): at or above `continue_veto` the voice goes on, at or below
    # `voice_done` it is done. On the held-out phone set (bot/eval/phone_data.py) 0.2 flags 86-90 % of
    # the pauses and 2-7 % of the ends, and 0.05 passes 78-86 % of the ends and 7-10 % of the pauses
    continue_veto: float = 0.2
    # complete words (not a bare answer) in a voice between `lean_continue` and the veto wait
    # `lean_silence`, not `complete_silence`: "Did the plumber come yet | or is he running late?"
    lean_continue: float = 0.1
    lean_silence: float = 0.55
    voice_done: float = 0.05
    unsure_done_silence: float = 0.4  # unsure words, a voice that is done
    unmarked_done_silence: float = 0.6  # unfinished by the decoder alone (nothing dangles), a voice that is done
    # words the recogniser was unsure of (mean token log-prob under this) that look unfinished, in a
    # voice that does not go on, say nothing either way: tiny.en garbles a voice it finds hard into
    # phrases that look cut off ("... Who fixed my leader", "... near the front,"). Over bench phone's
    # traces (our held-out voices, full band and 300-3400 Hz, and the real set) 39 such true ends
    # scored under -0.9 against 5 mid-sentence pauses; the words of those 5 holds were garbled too
    # (`python -m bot.eval.phone_trace OUT...` counts them in bench phone results)
    unsure_score: float = -0.9
    digits_silence: float = 1.1  # the phrase ends on a group of digits
    # one digit short of a number of at least `digits_short_min`: a digit the recogniser dropped, not
    # a group of one still to come (bench phone, real set: 3 of 18 numbers waited 1.6 s for it)
    digits_short_silence: float = 0.6
    digits_short_min: int = 4
    # the shortest time a caller takes to say one digit (4 a second is fast dictation: ~2-3 is usual)
    min_digit_seconds: float = 0.25
    # the recogniser heard speech but no words: nothing to answer but "Sorry, I didn't catch that",
    # which is never urgent; as long as a contested end (seen on the phone path: tiny.en returns
    # nothing for some digit groups, and the 0.75 s fallback answered inside the pause to the next)
    unheard_silence: float = 1.2
    # over the bot: words that are not a backchannel stop it (bot/policy/words.py takes_floor);
    # off: only interruption words ("wait", "stop") do
    words_take_floor: bool = True
    # ... when the caller's speech is no more than this far below the bot's own level: quieter
    # "speech" over the bot is its echo (a -35 dB echo is transcribed as the bot's words, and so was
    # the training calls' echo of up to -18 dB at a 20 dB margin). Nothing over the bot is sent to
    # ASR before it, the stop words included
    echo_margin_db: float = 12.0
    # ... and only after this much of the caller's own speech (chunks within the margin): a
    # backchannel is shorter, and tiny.en makes a short "yes" into "years" or "night" as often as it
    # makes a short "stop" into "step" (only interruption words act on a short overlap)
    floor_speech: float = 0.6
    # caller speech that starts within `resume_window` s of an end of turn, over the bot's answer, and
    # is the caller's own (not an echo) for `resume_speech` s stops the bot: the turn was taken in a
    # pause and the caller is going on. Waiting for words (`floor_speech`) let the bot talk over the
    # rest of the sentence for 0.7 s (bench phone, real set: "... a level of thought | which is ...",
    # the caller on again 0.22 s after the end of turn). Not while the model hears a backchannel, and
    # not later: an "Mm-hmm" 0.8 s into the answer (tests/engine/test_call.py) is a backchannel, and
    # 1.2 s stopped for it; a caller on again later than this is left to the model and the words
    resume_window: float = 0.6
    resume_speech: float = 0.128
    # seconds of silence at least waited for a pending transcript. The answer is made from it, so a
    # turn ended before it is answered no sooner, only without the words' say on whether the caller
    # was done: with 20 calls on two cores tiny.en took 0.3-0.9 s for a long sentence, and the 0.75 s
    # fallback ended 4 of 20 one-second pauses before their words came (bench phone, real set). The
    # bound is for a recogniser that fails
    text_wait: float = 1.2
    sure_eot: float = 0.999  # p(eot) at which the model needs no words (on unseen voices it is often
    # 0.9+ inside pauses: it waits for the words unless it is all but certain)


@dataclass(frozen=True, slots=True)
class Patience:
    """The silence (seconds) after which this pause ends the turn, and why (for the trace)."""
    silence: float
    reason: str
    source: str  # "words" | "model" | "fallback"


# the end-of-turn fallback of the "balanced" preset, which is PolicySettings' default
BALANCED_FALLBACK = PolicySettings().max_end_of_turn_silence


def care(max_end_of_turn_silence: float) -> float:
    """How much longer than "balanced" a tenant waits on ambiguous evidence: its end-of-turn
    fallback against balanced's 0.75 s ("fast" 0.5 s: 0.67, "accurate" 2 s: 2.67), within 0.5-3."""
    return min(3.0, max(0.5, max_end_of_turn_silence / BALANCED_FALLBACK))


def patience(words: WordEvidence | None, words_pending: bool, p_eot: float, p_hold: float, model_end: bool,
             fallback: float, fs: FusionSettings = FusionSettings(), careful: float = 1.0) -> Patience:
    """`words`: the evidence for this pause (None if none has arrived); `words_pending`: a transcript
    of this pause is being computed; `model_end`: the model's p(eot) has crossed its (confirmed)
    threshold; `fallback`: the model's own fallback silence for this pause (hold-aware); `careful`:
    the tenant's latency-versus-accuracy choice (`care`), which scales the waits on ambiguous
    evidence (a voice that may go on, unsure or unmarked words in a voice that sounds done); clear
    evidence is taken, or waited, the same in every mode."""
    if words is None:
        if model_end and (p_eot >= fs.sure_eot or not words_pending):
            return Patience(0.0, f"p(eot)={p_eot:.2f}", "model")
        if words_pending:
            # the words are on their way, and the answer is made from them: a turn ended before they
            # come is answered no sooner, only without knowing whether they were finished (a model
            # over its threshold on an unseen voice is often inside a pause); so only the fallback
            # ends it first
            return Patience(max(fallback, fs.text_wait), f"waiting for words (p(eot)={p_eot:.2f})", "model")
        return Patience(fallback, f"silence fallback (p(eot)={p_eot:.2f}, p(hold)={p_hold:.2f})", "fallback")
    c = words.complete
    tag = f"words {c:.2f} \u201c{_tail(words.text)}\u201d"
    pc = words.p_continue
    voice = "" if pc is None else f", p(continue)={pc:.2f}"
    if not words.text.strip():
        return Patience(fs.unheard_silence, f"no words heard{voice}: more may follow", "words")
    want, n = words.digits_expected, words.digit_count
    if want > 0 and (n > 0 or words.digits):  # digits it had no time to say (n capped to 0) are none
        if n >= want:
            return Patience(fs.complete_silence, f"{tag}: {n} digits, {want} asked for", "words")
        if n == want - 1 and want >= fs.digits_short_min and not words.digits_capped:
            return Patience(fs.digits_short_silence * careful, f"{tag}: {n} of {want} digits, one likely dropped",
                            "words")
        return Patience(fs.incomplete_silence, f"{tag}: {n} of {want} digits, the rest may follow", "words")
    if words.digits:
        return Patience(fs.digits_silence, f"{tag}: digits, the next group may follow", "words")
    if c <= fs.incomplete:
        if not words.open_ending and pc is not None and pc <= fs.voice_done:
            # no '?' heard, but nothing dangles and the voice is done: tiny.en often drops the mark
            # of a question in a voice it finds hard ("is the soup vegetarian")
            return Patience(fs.unmarked_done_silence * careful, f"{tag}{voice}: unmarked words, the voice is done",
                            "words")
        if pc is not None and pc <= fs.voice_done and is_bare_answer(words.text):
            # "Yes," / "No..." in a voice that is done: tiny.en's mark after a real bare answer
            return Patience(fs.unmarked_done_silence * careful, f"{tag}{voice}: a bare answer, the voice is done",
                            "words")
        if words.score is not None and words.score < fs.unsure_score and pc is not None and pc < fs.continue_veto:
            # words the recogniser barely heard are no evidence of an unfinished phrase: as unsure
            # words, the voice and the model decide (the model's hold-aware fallback, but no longer
            # than unfinished words would wait)
            tag = f"{tag}{voice}, score {words.score:.2f}: unfinished words the recogniser was unsure of"
            if pc <= fs.voice_done:
                return Patience(fs.unsure_done_silence * careful, f"{tag}, the voice is done", "words")
            return Patience(min(fallback, fs.incomplete_silence), f"{tag}, silence fallback (p(eot)={p_eot:.2f})",
                            "fallback")
        # an open ending wins over the voice: "I'm calling about," said as if it were complete
        return Patience(fs.incomplete_silence, f"{tag}{voice}: unfinished", "words")
    if pc is not None and pc >= fs.continue_veto:
        return Patience(fs.contested_silence, f"{tag}{voice}: the voice goes on", "words")
    if p_hold >= fs.hold_veto and (pc is None or pc > fs.voice_done):
        # the model's hold head is not trusted over a voice that is done: on real callers it reads
        # p(hold) 0.8-0.98 after most bare "Yes." / "No." answers (bench phone, real set)
        return Patience(fs.contested_silence, f"{tag}, but p(hold)={p_hold:.2f}", "words")
    if model_end:
        return Patience(0.0, f"{tag}{voice}, p(eot)={p_eot:.2f}", "model")
    if c >= fs.complete:
        if pc is not None and pc > fs.lean_continue and not is_bare_answer(words.text):
            return Patience(fs.lean_silence * careful, f"{tag}{voice}: complete, the voice may go on", "words")
        return Patience(fs.complete_silence, f"{tag}{voice}: complete", "words")
    if pc is not None and pc <= fs.voice_done:
        return Patience(fs.unsure_done_silence * careful, f"{tag}{voice}: unsure words, the voice is done", "words")
    return Patience(fallback, f"{tag}: unsure, silence fallback (p(eot)={p_eot:.2f})", "fallback")


def _tail(text: str, words: int = 4) -> str:
    ws = text.split()
    return ("\u2026 " if len(ws) > words else "") + " ".join(ws[-words:])
