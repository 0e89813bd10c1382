"""The fusion of words, prosody and time (bot/policy/fusion.py, completeness.py) on hand-made cases,
and the duplex policy acting on it."""
from dataclasses import replace

from bot.policy.base import ModelOutput, Observation, PolicySettings
from bot.policy.completeness import evidence, text_completeness
from bot.policy.duplex import DuplexPolicy
from bot.policy.fusion import FusionSettings, care, patience

FS = FusionSettings()


def test_completeness_from_decoder_and_ending():
    assert text_completeness("Do you live by yourself?", 0.9) > FS.complete
    # Whisper sometimes punctuates a dangling phrase: the last word caps it
    assert text_completeness("So do you play basketball on the?", 0.8) <= FS.incomplete
    assert text_completeness("I need to talk to", 0.41) <= FS.incomplete
    assert text_completeness("I was wondering if...", 0.9) <= FS.incomplete
    assert text_completeness("Where are you going with", 0.6) < FS.complete  # a weak ending: unsure
    assert text_completeness("", 0.9) == 0.5  # no words, no evidence


def test_complete_words_are_taken_fast():
    p = patience(evidence("Where is the store?", 0.92, 1.0), False, p_eot=0.3, p_hold=0.2, model_end=False,
                 fallback=0.75)
    assert p.silence == FS.complete_silence and p.source == "words"


def test_unfinished_words_are_waited_out_even_if_the_model_says_end():
    p = patience(evidence("I would like to order a", 0.2, 1.0), False, p_eot=0.95, p_hold=0.0, model_end=True,
                 fallback=0.75)
    assert p.silence == FS.incomplete_silence


def test_prosody_contests_complete_looking_words():
    # "Do you live by yourself ... or with your family?": the words could end, the voice goes on
    p = patience(evidence("Do you live by yourself?", 0.9, 1.0), False, p_eot=0.1, p_hold=0.9, model_end=False,
                 fallback=3.0)
    assert p.silence == FS.contested_silence


def test_the_voice_going_on_contests_complete_words_and_a_sure_model():
    words = evidence("Do you live by yourself?", 0.9, 1.0, p_continue=0.8)
    p = patience(words, False, p_eot=0.95, p_hold=0.0, model_end=True, fallback=0.75)
    assert p.silence == FS.contested_silence and "goes on" in p.reason
    done = evidence("Do you live by yourself?", 0.9, 1.0, p_continue=0.02)
    assert patience(done, False, 0.3, 0.0, False, 0.75).silence == FS.complete_silence


def test_complete_words_in_a_voice_that_may_go_on_wait_a_pause_s_length():
    # "Did the plumber come yet | or is he running late?": a whole question by its words, the voice
    # between done and going on (p(continue) 0.12; bench phone out/phone-set took 5 of 30 such holds)
    lean = evidence("Did the plumber come yet?", 0.95, 1.0, p_continue=0.12)
    p = patience(lean, False, 0.3, 0.2, False, 0.75)
    assert p.silence == FS.lean_silence and FS.complete_silence < p.silence < FS.contested_silence
    assert "may go on" in p.reason
    # a voice that is done, or a bare answer, is answered at once as before
    assert patience(evidence("Did the plumber come yet?", 0.95, 1.0, p_continue=0.08), False, 0.3, 0.2, False,
                    0.75).silence == FS.complete_silence
    assert patience(evidence("Yes.", 0.9, 1.0, p_continue=0.15), False, 0.3, 0.2, False,
                    0.75).silence == FS.complete_silence


def test_a_careful_tenant_waits_longer_on_ambiguous_words_only():
    acc = care(2.0)  # the "accurate" end_of_turn preset
    lean = evidence("Did the plumber come yet?", 0.95, 1.0, p_continue=0.12)
    unsure = evidence("Who is teaching the class", 0.5, 1.0, p_continue=0.02)
    for w, base in ((lean, FS.lean_silence), (unsure, FS.unsure_done_silence)):
        assert patience(w, False, 0.3, 0.2, False, 2.0, FS, acc).silence == base * acc
        assert patience(w, False, 0.3, 0.2, False, 0.75, FS).silence == base
    assert acc * FS.lean_silence > 1.0  # covers a one-second pause (bench phone out/phone-set-1s: 12 -> 0 of 60)
    # clear evidence is taken the same in every mode
    done = evidence("Where is the store?", 0.92, 1.0, p_continue=0.02)
    assert patience(done, False, 0.3, 0.2, False, 2.0, FS, acc).silence == FS.complete_silence
    assert care(100.0) == 3.0 and care(0.0) == 0.5


def test_a_voice_that_is_done_settles_unsure_words():
    words = evidence("Who is teaching the class", 0.5, 1.0, p_continue=0.02)
    assert FS.incomplete < words.complete < FS.complete
    assert patience(words, False, 0.3, 0.0, False, 0.75).silence == FS.unsure_done_silence
    unsure_voice = evidence("Who is teaching the class", 0.5, 1.0, p_continue=0.1)
    assert patience(unsure_voice, False, 0.3, 0.0, False, 0.75).silence == 0.75


def test_model_sure_ends_at_once_unless_words_disagree():
    sure = patience(evidence("Yes, that's right.", 0.8, 1.0), False, p_eot=0.97, p_hold=0.0, model_end=True,
                    fallback=0.75)
    assert sure.silence == 0.0 and sure.source == "model"


def test_pending_words_hold_back_an_unsure_model():
    # the answer needs the words: a model over its threshold does not end the turn before them
    # and the words come slower than the 0.75 s fallback under load: the fallback waits for them
    waiting = patience(None, True, p_eot=0.8, p_hold=0.0, model_end=True, fallback=0.75)
    assert waiting.silence == FS.text_wait > 0.75 and "waiting for words" in waiting.reason
    held = patience(None, True, p_eot=0.8, p_hold=0.9, model_end=True, fallback=3.0)
    assert held.silence == 3.0
    eager = patience(None, True, p_eot=0.8, p_hold=0.0, model_end=True, fallback=0.25)
    assert eager.silence == FS.text_wait  # a tenant's short fallback still leaves the words time
    certain = patience(None, True, p_eot=0.9995, p_hold=0.0, model_end=True, fallback=0.75)
    assert certain.silence == 0.0
    no_words = patience(None, False, p_eot=0.3, p_hold=0.0, model_end=False, fallback=0.75)
    assert no_words.silence == 0.75 and no_words.source == "fallback"


def test_speech_without_words_waits_even_for_a_sure_model():
    # tiny.en made nothing of "five four five |": the next group came 0.97 s later
    nothing = evidence("", 0.5, 1.0, p_continue=0.3)
    p = patience(nothing, False, p_eot=0.99, p_hold=0.0, model_end=True, fallback=0.75)
    assert p.silence == FS.unheard_silence > 1.0 and "no words" in p.reason


def test_unsure_words_leave_it_to_the_model_and_its_fallback():
    mid = patience(evidence("Where are you going with", 0.9, 1.0), False, 0.3, 0.0, False, 0.75)
    assert mid.silence == 0.75 and mid.source == "fallback"
    sure = patience(evidence("Where are you going with", 0.9, 1.0), False, 0.96, 0.0, True, 0.75)
    assert sure.silence == 0.0 and sure.source == "model"


def test_an_open_ending_wins_over_a_voice_that_sounds_done():
    fragment = evidence("I'm calling about,", 0.3, 1.0, p_continue=0.01)  # a fragment said like a sentence
    assert fragment.open_ending
    assert patience(fragment, False, 0.3, 0.0, False, 0.75).silence == FS.incomplete_silence
    dangling = evidence("I need to talk to", 0.4, 1.0, p_continue=0.01)
    assert patience(dangling, False, 0.3, 0.0, False, 0.75).silence == FS.incomplete_silence


def test_unfinished_words_the_recogniser_was_unsure_of_leave_it_to_the_voice_and_the_model():
    # tiny.en garbling a hard voice: "Who fixed the leak?" heard as "... near the front,"
    def garbled(p_continue: float | None, score: float = -1.2):
        return evidence("Who fixed the leak near the front,", 0.3, 1.0, p_continue=p_continue, score=score)
    assert garbled(0.1).complete <= FS.incomplete and garbled(0.1).open_ending
    done = patience(garbled(0.02), False, 0.3, 0.0, False, 0.75)
    assert done.silence == FS.unsure_done_silence and "unsure of" in done.reason
    neutral = patience(garbled(0.1), False, 0.3, 0.0, False, 0.75)
    assert neutral.silence == 0.75 and neutral.source == "fallback"
    # the model hearing a hold extends it, but never past what unfinished words wait
    assert patience(garbled(0.1), False, 0.3, 0.9, False, 3.0).silence == FS.incomplete_silence
    assert patience(garbled(0.1), False, 0.3, 0.0, False, 0.75, careful=2.0).silence == 0.75  # the model's own
    # a voice going on, a recogniser that was sure, or no voice at all: the words stand
    assert patience(garbled(0.3), False, 0.3, 0.0, False, 0.75).silence == FS.incomplete_silence
    assert patience(garbled(0.02, score=-0.3), False, 0.3, 0.0, False, 0.75).silence == FS.incomplete_silence
    assert patience(garbled(None), False, 0.3, 0.0, False, 0.75).silence == FS.incomplete_silence


def test_an_unmarked_question_in_a_voice_that_is_done_waits_less():
    unmarked = evidence("is the soup vegetarian", 0.19, 1.0, p_continue=0.01)  # no '?' heard
    assert unmarked.complete <= FS.incomplete and not unmarked.open_ending
    assert patience(unmarked, False, 0.3, 0.0, False, 0.75).silence == FS.unmarked_done_silence
    unsure_voice = evidence("is the soup vegetarian", 0.19, 1.0, p_continue=0.3)
    assert patience(unsure_voice, False, 0.3, 0.0, False, 0.75).silence == FS.incomplete_silence


def test_a_turn_ending_on_a_filler_is_unfinished():
    assert text_completeness("The reason I'm calling is, you know.", 0.9) <= FS.incomplete
    assert text_completeness("I'd like to, let me see.", 0.8) <= FS.incomplete


# -- the policy ------------------------------------------------------------------------------------
QUIET = ModelOutput(0.3, 0.2, 0, 0, 0)


def feed(p: DuplexPolicy, steps: list[tuple[float, ModelOutput]], t0: float = 0.0):
    out = []
    for i, (vad, m) in enumerate(steps):
        t = t0 + (i + 1) * 0.032
        out += [(d.kind, d) for d in p.step(Observation(t=t, vad=vad, bot_speaking=False, model=m))]
    return out, t0 + len(steps) * 0.032


def speech_then_pause(p: DuplexPolicy, pause_chunks: int):
    out, t = feed(p, [(0.9, QUIET)] * 20 + [(0.0, QUIET)] * 3)  # speech, then the VAD closes the segment
    ends = [d for k, d in out if k == "speech_end"]
    assert ends, out
    return ends[0].t, t


def test_policy_ends_the_turn_when_complete_words_arrive():
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    pause_t, t = speech_then_pause(p, 3)
    decided = p.on_words(evidence("Where is the store?", 0.92, pause_t, t + 0.06))
    assert [d.kind for d in decided] == ["end_of_turn"]
    assert "complete" in decided[0].reason


def test_policy_waits_out_a_pause_after_unfinished_words():
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    pause_t, t = speech_then_pause(p, 3)
    assert p.on_words(evidence("So do you play basketball on the", 0.3, pause_t, t)) == []
    out, t = feed(p, [(0.0, ModelOutput(0.6, 0.2, 0, 0, 0))] * 30, t)  # 1 s more of silence
    assert "end_of_turn" not in [k for k, _ in out]
    out, t = feed(p, [(0.0, QUIET)] * 20, t)  # past incomplete_silence: answered anyway
    assert [k for k, _ in out].count("end_of_turn") == 1


def test_a_model_over_its_threshold_waits_for_late_words_that_say_unfinished():
    """A loaded recogniser: the words of the pause come 0.6 s in. The model's p(eot) is over its
    threshold all along (as on unseen voices inside pauses), yet the turn waits for them, and they
    say the caller is mid-phrase."""
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    pause_t, t = speech_then_pause(p, 3)
    sure = ModelOutput(0.97, 0.1, 0, 0, 0)
    out, t = feed(p, [(0.0, sure)] * 16, t)  # ~0.6 s of silence, no words yet
    assert "end_of_turn" not in [k for k, _ in out], out
    assert p.on_words(evidence("unless a system is established for the", 0.3, pause_t, t)) == []
    out, t = feed(p, [(0.0, sure)] * 20, t)
    assert "end_of_turn" not in [k for k, _ in out]


def test_stale_words_from_an_earlier_pause_are_ignored():
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    pause_t, t = speech_then_pause(p, 3)
    out, t = feed(p, [(0.9, QUIET)] * 5, t)  # the caller went on before the words arrived
    assert p.on_words(evidence("Do you live by yourself?", 0.9, pause_t, t)) == []


def test_without_fusion_the_policy_is_the_model_alone():
    p = DuplexPolicy(PolicySettings())
    pause_t, t = speech_then_pause(p, 3)
    assert p.on_words(evidence("Where is the store?", 0.92, pause_t, t)) == []


# -- barge-in words backstop -----------------------------------------------------------------------
UNSURE = ModelOutput(0.0, 0.0, 0.3, 0.2, 0)  # the model neither stops nor calls it a backchannel


def overlap(p: DuplexPolicy, chunks: int, t0: float = 0.0, level_db: float = 0.0):
    """`chunks` of caller speech over the bot, `level_db` against the bot's own level."""
    out = []
    for i in range(chunks):
        t = t0 + (i + 1) * 0.032
        out += p.step(Observation(t=t, vad=0.9, bot_speaking=True, model=UNSURE, rms=0.05 * 10 ** (level_db / 20),
                                  bot_rms=0.05))
    return out, t0 + chunks * 0.032


def test_words_over_the_bot_stop_it_when_the_model_does_not():
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    out, t = overlap(p, 6)  # 0.19 s of caller speech over the bot
    asks = [d for d in out if d.kind == "transcribe_overlap"]
    assert asks and not [d for d in out if d.kind == "interrupt"]
    stop = p.on_transcript("wait", asks[0].onset, t)
    assert [d.kind for d in stop] == ["interrupt"] and "wait" in stop[0].reason


def test_overlap_is_rechecked_every_two_chunks_and_once_whole_at_its_end():
    """Whisper hears a "wait" only from ~0.23 s of it: periodic checks (skippable while one runs)
    follow every RECHECK, and the whole overlap is transcribed once when it ends (never skipped)."""
    from bot.policy.duplex import RECHECK
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    out, t = overlap(p, 14)
    asks = [d for d in out if d.kind == "transcribe_overlap"]
    assert len(asks) >= 4 and all(d.recheck for d in asks)
    gaps = [b.t - a.t for a, b in zip(asks, asks[1:])]
    assert all(abs(g - RECHECK) < 0.033 for g in gaps), gaps
    end = []
    for i in range(3):
        end += p.step(Observation(t=t + (i + 1) * 0.032, vad=0.0, bot_speaking=True, model=UNSURE, bot_rms=0.05))
    final = [d for d in end if d.kind == "transcribe_overlap"]
    assert len(final) == 1 and not final[0].recheck and final[0].onset == asks[0].onset


def test_backchannels_and_murmurs_over_the_bot_leave_it_to_the_model():
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    out, t = overlap(p, 6)
    onset = [d for d in out if d.kind == "transcribe_overlap"][0].onset
    for text in ("yeah, right, I see", "Mm-hmm.", "Yes.", "you", "No.", "Thank you.", ""):
        assert p.on_transcript(text, onset, t) == [], text
    out, t = overlap(p, 20, t)
    assert "interrupt" not in [d.kind for d in out]


def test_words_that_are_not_a_backchannel_take_the_floor():
    """A caller who goes on talking over the bot wants to speak: after `floor_speech` of the caller's
    own speech, words that are not a backchannel stop the bot."""
    long_enough = int((FS.floor_speech + PolicySettings().min_speech) / 0.032) + 2  # the VAD opens after min_speech
    for text in ("my address is", "Yes, but the other one"):
        p = DuplexPolicy(PolicySettings(), fusion=FS)
        out, t = overlap(p, long_enough)
        onset = [d for d in out if d.kind == "transcribe_overlap"][0].onset
        stop = p.on_transcript(text, onset, t)
        assert [d.kind for d in stop] == ["interrupt"] and "not a backchannel" in stop[0].reason, text
    # a short sound is not enough: tiny.en makes a short "yes" into "years" as often as "stop" into "step"
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    out, t = overlap(p, 8)
    onset = [d for d in out if d.kind == "transcribe_overlap"][0].onset
    assert p.on_transcript("years", onset, t) == []
    # off: only interruption words stop the bot
    from dataclasses import replace
    p = DuplexPolicy(PolicySettings(), fusion=replace(FS, words_take_floor=False))
    out, t = overlap(p, long_enough)
    onset = [d for d in out if d.kind == "transcribe_overlap"][0].onset
    assert p.on_transcript("my address is", onset, t) == []


def test_the_bots_own_echo_is_not_transcribed_as_the_caller():
    """Speech 35 dB below the bot's level is its echo: nothing is sent to ASR, so the bot's own
    words ("Sorry, ...") never stop it; once the caller speaks up, their words are transcribed
    from where they began."""
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    out, t = overlap(p, 30, level_db=-35)
    assert not [d for d in out if d.kind in ("transcribe_overlap", "interrupt")]
    out, t = overlap(p, 8, t, level_db=-3)
    asks = [d for d in out if d.kind == "transcribe_overlap"]
    assert asks and asks[0].onset > 30 * 0.032 - 1e-6  # from the caller's own speech, not the echo's onset
    assert [d.kind for d in p.on_transcript("Sorry, wait", asks[0].onset, t)] == ["interrupt"]


def test_without_fusion_no_words_are_asked_for_over_the_bot():
    p = DuplexPolicy(PolicySettings())
    out, _ = overlap(p, 30)
    assert not [d for d in out if d.kind in ("transcribe_overlap", "interrupt")]


def test_a_stop_word_whose_words_come_back_after_it_ended_still_stops_the_bot():
    """A real "stop" (0.4 s) is often over before ASR answers: its whole length is transcribed
    once at its end, and the transcript counts up to LATE_WORDS after it."""
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    out, t = overlap(p, 12)  # 0.38 s of caller speech over the bot
    onset = [d for d in out if d.kind == "transcribe_overlap"][0].onset
    ended = []
    for i in range(4):  # then silence while the bot goes on
        t += 0.032
        ended += p.step(Observation(t=t, vad=0.0, bot_speaking=True, model=UNSURE))
    kinds = [d.kind for d in ended]
    assert "speech_end" in kinds and kinds.count("transcribe_overlap") == 1
    stop = p.on_transcript("Stop.", onset, t + 0.4)
    assert [d.kind for d in stop] == ["interrupt"]
    p2 = DuplexPolicy(PolicySettings(), fusion=FS)
    out, t = overlap(p2, 12)
    for i in range(4):
        t += 0.032
        p2.step(Observation(t=t, vad=0.0, bot_speaking=True, model=UNSURE))
    assert p2.on_transcript("Stop.", onset, t + 2.0) == []  # too late: the moment has passed


def test_a_bare_answer_is_a_whole_turn_whatever_the_decoder_says():
    from bot.policy.completeness import text_completeness
    for text in ("Yes.", "No", "No thanks.", "That's right.", "Thank you"):
        assert text_completeness(text, 0.3) >= 0.9, text
    for text in ("Yes,", "you", "That is", "Yes I want"):
        assert text_completeness(text, 0.3) < 0.6, text


def test_a_number_read_out_in_groups_waits_for_the_next_group():
    from bot.policy.completeness import ends_on_digits
    for text in ("652, 300.", "six five two", "My number is 4111-1111", "three, eight, five, zero,"):
        assert ends_on_digits(text), text
    for text in ("I have 2 dogs.", "Room 12, please.", "Do you live by yourself?", "", "one"):
        assert not ends_on_digits(text), text
    # a group closed by a full stop that tiny.en is sure of is still only a group
    p = patience(evidence("652.", 0.95, 1.0, p_continue=0.01), False, p_eot=0.99, p_hold=0.0, model_end=True,
                 fallback=0.75)
    assert p.silence == FS.digits_silence and "digits" in p.reason
    # longer than the pauses between groups (0.6-1.0 s), well short of the unfinished-words wait
    assert 1.0 < FS.digits_silence < FS.incomplete_silence


def test_a_voice_that_is_done_overrides_the_models_hold_on_complete_words():
    """On real callers the model reads p(hold) 0.8-0.98 after bare answers; the Whisper-based probe
    hearing the voice done wins, while an unknown or unsure voice still lets the model contest."""
    done = patience(evidence("Yes.", 0.7, 1.0, p_continue=0.01), False, p_eot=0.2, p_hold=0.95, model_end=False,
                    fallback=0.75)
    assert done.silence == FS.complete_silence
    for pc in (None, 0.1):
        p = patience(evidence("Yes.", 0.7, 1.0, p_continue=pc), False, p_eot=0.2, p_hold=0.95, model_end=False,
                     fallback=0.75)
        assert p.silence == FS.contested_silence and "p(hold)" in p.reason, pc


def test_a_bare_answer_with_an_open_mark_in_a_voice_that_is_done_waits_less():
    """tiny.en writes a real bare "yes" as "yes," or "No..." now and then: with the voice done it is
    taken after `unmarked_done_silence`, while "Yes, I" and an unsure voice still wait it out."""
    for text in ("yes,", "No...", "Okay,"):
        p = patience(evidence(text, 0.3, 1.0, p_continue=0.01), False, p_eot=0.2, p_hold=0.1, model_end=False,
                     fallback=0.75)
        assert p.silence == FS.unmarked_done_silence and "bare answer" in p.reason, text
    for text, pc in (("Yes, I", 0.01), ("yes,", 0.3), ("yes,", None)):
        p = patience(evidence(text, 0.3, 1.0, p_continue=pc), False, p_eot=0.2, p_hold=0.1, model_end=False,
                     fallback=0.75)
        assert p.silence >= FS.contested_silence, (text, pc)


def test_a_number_of_the_length_asked_for_is_taken_at_once_and_a_shorter_one_waited_for():
    from bot.policy.completeness import trailing_digits
    assert [trailing_digits(t) for t in ("652, 300.", "six five two", "4111-1111", "6, 5, 2, 3, 0, 1,",
                                         "I have 2 dogs.", "", "my number is oh seven double one")] == \
        [6, 3, 8, 6, 0, 0, 4]  # "double one": two
    done = patience(evidence("652, 300.", 0.3, 1.0, digits_expected=6), False, p_eot=0.2, p_hold=0.9,
                    model_end=False, fallback=3.0)
    assert done.silence == FS.complete_silence and "6 digits, 6 asked for" in done.reason
    more = patience(evidence("652.", 0.95, 1.0, p_continue=0.01, digits_expected=6), False, p_eot=0.99, p_hold=0.0,
                    model_end=True, fallback=0.75)
    assert more.silence == FS.incomplete_silence > FS.digits_silence and "3 of 6" in more.reason
    # one short of six: a dropped digit, not a group of one to come; of three, a digit may yet follow
    short = patience(evidence("652, 30.", 0.3, 1.0, digits_expected=6), False, p_eot=0.2, p_hold=0.9,
                     model_end=False, fallback=0.75)
    assert FS.complete_silence < short.silence == FS.digits_short_silence < 1.0 and "one likely dropped" in short.reason
    # ... unless the recogniser wrote more digits than the caller had time for (bench phone, digits-014:
    # "1 2 6 3 3 1 3 1 3 3 1" for six digits said, capped to 9 of 10, inside the pause before the last group)
    capped = replace(evidence("652, 30.", 0.3, 1.0, digits_expected=6), digits_capped=True)
    assert patience(capped, False, p_eot=0.2, p_hold=0.9, model_end=False,
                    fallback=0.75).silence == FS.incomplete_silence
    assert patience(evidence("65.", 0.3, 1.0, digits_expected=3), False, p_eot=0.2, p_hold=0.9, model_end=False,
                    fallback=0.75).silence == FS.incomplete_silence
    assert patience(evidence("652, 30.", 0.3, 1.0, digits_expected=6), False, p_eot=0.2, p_hold=0.9, model_end=False,
                    fallback=0.75, careful=2.0).silence == 2 * FS.digits_short_silence
    # a hallucinated extra digit still ends it (at least as many as asked for); words, not digits:
    # the usual rules, whatever was asked
    assert patience(evidence("6, 5, 2, 3, 0, 1, 1.", 0.3, 1.0, digits_expected=6), False, p_eot=0.2, p_hold=0.0,
                    model_end=False, fallback=0.75).silence == FS.complete_silence
    assert patience(evidence("I don't have it with me.", 0.9, 1.0, digits_expected=6), False, p_eot=0.2,
                    p_hold=0.0, model_end=False, fallback=0.75).silence == FS.complete_silence


def test_the_policy_holds_a_number_until_the_digits_asked_for_are_heard_then_forgets_the_ask():
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    p.expect_digits(6)
    pause_t, t = speech_then_pause(p, 3)
    assert p.on_words(evidence("652.", 0.95, pause_t, t)) == []  # 3 of 6: the rest may follow
    out, t = feed(p, [(0.0, ModelOutput(0.99, 0.0, 0, 0, 0))] * 45, t)  # 1.4 s: past digits_silence
    assert "end_of_turn" not in [k for k, _ in out]
    out, t = feed(p, [(0.9, QUIET)] * 40 + [(0.0, QUIET)] * 3, t)  # the second group (1.9 s of speech in all)
    pause_t = next(d.t for k, d in out if k == "speech_end")
    decided = p.on_words(evidence("652, 300.", 0.4, pause_t, t + 0.06))
    assert [d.kind for d in decided] == ["end_of_turn"] and "6 digits, 6 asked for" in decided[0].reason
    # the next turn is not a number asked for: a group of digits waits as it always did
    out, t = feed(p, [(0.9, QUIET)] * 20 + [(0.0, QUIET)] * 3, t + 1.0)
    pause_t = next(d.t for k, d in out if k == "speech_end")
    assert p.on_words(evidence("652, 300.", 0.4, pause_t, t + 0.06)) == []
    assert p.words is not None and p.words.digits_expected == 0


def test_repeated_digits_the_caller_had_no_time_to_say_do_not_complete_the_number():
    # tiny.en writes a 0.64 s group of three as six digits: no one says six digits in that time
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    p.expect_digits(6)
    pause_t, t = speech_then_pause(p, 3)  # 20 chunks of speech: 0.64 s
    assert p.on_words(evidence("1 5 8 8 8 8", 0.5, pause_t, t + 0.06)) == []
    assert p.words is not None and p.words.digit_count == int(0.64 / FS.min_digit_seconds) < 6
    assert p.words.digits_capped  # so a count one short of the number is no evidence of a dropped digit
    out, t = feed(p, [(0.9, QUIET)] * 40 + [(0.0, QUIET)] * 3, t)  # 1.3 s more: the rest of the number
    pause_t = next(d.t for k, d in out if k == "speech_end")
    assert [d.kind for d in p.on_words(evidence("1 5 8 8 8 8 0 5 8", 0.5, pause_t, t + 0.06))] == ["end_of_turn"]


def test_digits_heard_in_a_blip_are_none_of_the_number():
    # the VAD opened for 0.1 s and tiny.en wrote a number into it ("3 3 3 3 2", bench phone
    # digits-003): none of the eight digits asked for, so the pause is waited as unfinished
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    p.expect_digits(8)
    out, t = feed(p, [(0.9, QUIET)] * 3 + [(0.0, QUIET)] * 3)
    pause_t = next(d.t for k, d in out if k == "speech_end")
    assert p.on_words(evidence("3 3 3 3 2", 0.4, pause_t, t + 0.06)) == []
    assert p.words is not None and p.words.digit_count == 0
    out, t = feed(p, [(0.0, QUIET)] * 45, t)  # 1.4 s: past digits_silence and unheard_silence
    assert "end_of_turn" not in [k for k, _ in out]
    out, t = feed(p, [(0.0, QUIET)] * 10, t)
    ends = [d for k, d in out if k == "end_of_turn"]
    assert ends and "0 of 8 digits" in ends[0].reason, out


def test_a_caller_who_goes_on_into_the_bots_first_words_stops_it_at_once():
    """An end of turn taken inside a pause ("... a level of thought | which is by no means
    primitive"): the caller's own speech starting within `resume_window` of it, over the bot's
    answer, stops the bot after `resume_speech` without waiting for words. An echo of the answer,
    or speech well into it, leaves it to the model and the words as before."""
    def ended():
        p = DuplexPolicy(PolicySettings(), fusion=FS)
        pause_t, t = speech_then_pause(p, 3)
        assert [d.kind for d in p.on_words(evidence("Where is the store?", 0.92, pause_t, t + 0.06))] == ["end_of_turn"]
        return p, t + 0.06

    p, ended_at = ended()
    out, _ = overlap(p, 10, ended_at + 0.2)
    stops = [d for d in out if d.kind == "interrupt"]
    assert len(stops) == 1 and "went on" in stops[0].reason, out
    assert stops[0].t - (ended_at + 0.2) <= PolicySettings().min_speech + FS.resume_speech + 0.07
    # the caller went on just before the turn was taken, the VAD confirming it after: the same
    # (bench phone out/phone-set pause-006: the bot talked 0.94 s over "for the walk this afternoon")
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    pause_t, t = speech_then_pause(p, 3)
    out, t = feed(p, [(0.0, QUIET)] * 3 + [(0.9, QUIET)], t)  # the first voiced chunk, not yet speech
    assert [d.kind for d in p.on_words(evidence("Where is the store?", 0.92, pause_t, t))] == ["end_of_turn"]
    out, _ = overlap(p, 10, t)
    stops = [d for d in out if d.kind == "interrupt"]
    assert len(stops) == 1 and "went on 0.03 s before" in stops[0].reason, out
    p, ended_at = ended()
    out, _ = overlap(p, 30, ended_at + 0.2, level_db=-35)  # the bot's own answer, echoed
    assert not [d for d in out if d.kind == "interrupt"]
    p, ended_at = ended()
    out, _ = overlap(p, 10, ended_at + FS.resume_window + 0.5)
    assert not [d for d in out if d.kind == "interrupt"]


def test_a_stop_the_vad_did_not_hear_does_not_end_the_turn_again_on_old_words():
    """The model's interrupt head stops the bot for a caller the VAD does not hear at all: the words
    of the caller's last pause are not what was said over the bot, so the bot falling silent is not
    an end of turn on them (it was: the bot spoke and was stopped every 0.1-0.2 s, bench phone
    digits-003). The model's own fallback ends that silence, no sooner."""
    p = DuplexPolicy(PolicySettings(), fusion=FS)
    pause_t, t = speech_then_pause(p, 3)
    assert [d.kind for d in p.on_words(evidence("Where is the store?", 0.92, pause_t, t + 0.06))] == ["end_of_turn"]
    t += 0.06
    stop = ModelOutput(0.0, 0.0, 0.95, 0.0, 0)
    out = []
    for i in range(10):  # the bot answers; the model hears the caller over it, the VAD hears nothing
        t += 0.032
        out += p.step(Observation(t=t, vad=0.0, bot_speaking=True, model=stop, rms=0.05, bot_rms=0.05))
    stops = [d for d in out if d.kind == "interrupt"]
    assert len(stops) == 1, out
    stopped = stops[0].t
    out, t = feed(p, [(0.0, QUIET)] * 40, t)  # the bot is silent: 1.3 s with no speech the VAD hears
    ends = [d for k, d in out if k == "end_of_turn"]
    assert ends and ends[0].t - stopped >= PolicySettings().max_end_of_turn_silence - 1e-6, ends
    assert "store" not in ends[0].reason and len(ends) == 1
