"""The baseline policy is sans-IO: fed observations with stream time, no clock, no I/O."""
from bot.policy import CHUNK_SECONDS, Observation, PolicySettings, VadTimeoutPolicy


def feed(policy, pattern, bot=False, t0=0.0):
    """pattern: list of (vad, seconds) or (vad, seconds, model heads); returns [(decision kind, t, decision)]"""
    out, t = [], t0
    for vad, secs, *model in pattern:
        obs_model = model[0] if model else None
        for _ in range(round(secs / CHUNK_SECONDS)):
            t += CHUNK_SECONDS
            obs = Observation(t=t, vad=vad, bot_speaking=bot, model=obs_model)
            out += [(d.kind, round(d.t, 3), d) for d in policy.step(obs)]
    return out, t


def kinds(out):
    return [k for k, _, _ in out]


def test_end_of_turn_after_silence_timeout_and_hold_on_resume():
    p = VadTimeoutPolicy(PolicySettings(end_of_turn_silence=0.5))
    out, _ = feed(p, [(0.0, 0.32), (0.9, 1.0), (0.05, 0.32), (0.9, 0.64), (0.02, 1.0)])
    assert kinds(out) == ["speech_start", "speech_end", "hold", "speech_start", "speech_end", "end_of_turn"]
    speech_end = [t for k, t, _ in out if k == "speech_end"][-1]
    eot = [d for k, _, d in out if k == "end_of_turn"][0]
    assert eot.silence >= 0.5 and eot.t - speech_end < 0.5


def test_clicks_shorter_than_min_speech_are_ignored():
    p = VadTimeoutPolicy(PolicySettings(min_speech=0.064))
    out, _ = feed(p, [(0.9, CHUNK_SECONDS), (0.0, 1.0)])
    assert out == []


def test_interruption_word_stops_and_backchannel_keeps_talking():
    p = VadTimeoutPolicy(PolicySettings(interruption_check_after=0.16))
    out, t = feed(p, [(0.95, 0.2)], bot=True)
    asks = [d for k, _, d in out if k == "transcribe_overlap"]
    assert asks, kinds(out)
    assert [d.kind for d in p.on_transcript("Wait", asks[0].onset, t)] == ["interrupt"]

    p = VadTimeoutPolicy(PolicySettings(interruption_check_after=0.16))
    out, t = feed(p, [(0.95, 0.2)], bot=True)
    onset = [d for k, _, d in out if k == "transcribe_overlap"][0].onset
    assert p.on_transcript("Yeah", onset, t) == []
    out2, _ = feed(p, [(0.95, 0.1), (0.0, 0.2)], bot=True, t0=t)
    assert "backchannel" in kinds(out2) and "interrupt" not in kinds(out2)


def test_long_overlap_interrupts_without_words_unless_allowed():
    p = VadTimeoutPolicy(PolicySettings(min_interruption_speech=0.5))
    out, _ = feed(p, [(0.95, 0.7)], bot=True)
    assert "interrupt" in kinds(out)
    p = VadTimeoutPolicy(PolicySettings(allow_overlap=True))
    out, _ = feed(p, [(0.95, 1.5)], bot=True)
    assert "interrupt" not in kinds(out)


def test_stale_transcript_for_an_old_onset_is_ignored():
    p = VadTimeoutPolicy()
    out, t = feed(p, [(0.95, 0.2)], bot=True)
    assert p.on_transcript("stop", onset=123.0, t=t) == []


def test_duplex_thresholds_are_relative_to_the_models_operating_point():
    from bot.runtime import calibrate

    s = calibrate(PolicySettings(eot_threshold=0.5, interrupt_threshold=0.5), eot=0.9, interrupt=0.8)
    assert (s.eot_threshold, s.interrupt_threshold) == (0.9, 0.8)
    s = calibrate(PolicySettings(eot_threshold=0.25, interrupt_threshold=0.75), eot=0.9, interrupt=0.8)
    assert s.eot_threshold == 0.45 and s.interrupt_threshold == 0.9
    s = calibrate(PolicySettings(eot_threshold=1.0, interrupt_threshold=0.0), eot=0.9, interrupt=0.8)
    assert (s.eot_threshold, s.interrupt_threshold) == (1.0, 0.0)


def test_a_lone_no_is_not_an_interruption_but_no_wait_is():
    from bot.policy.words import has_interrupt_word

    assert not has_interrupt_word("No...") and not has_interrupt_word("Mama")
    assert has_interrupt_word("No, wait") and has_interrupt_word("no that's wrong") and has_interrupt_word("Stop.")


def test_duplex_policy_falls_back_to_a_silence_timeout():
    """Whatever the model says, a caller who has been silent max_end_of_turn_silence has finished."""
    from bot.policy.base import ModelOutput
    from bot.policy.duplex import DuplexPolicy

    def run(hold: float) -> list:
        p = DuplexPolicy(PolicySettings(max_end_of_turn_silence=1.0, max_hold_silence=1.6))
        unsure = ModelOutput(eot=0.01, hold=hold, interrupt=0.0, backchannel=0.0)
        out, _ = feed(p, [(0.9, 0.64, unsure), (0.0, 2.5, unsure)])
        return [d for k, _, d in out if k == "end_of_turn"]

    eot = run(hold=0.2)
    assert len(eot) == 1 and "fallback" in eot[0].reason and 1.0 <= eot[0].silence < 1.1
    # a pause the model is sure is a hold gets max_hold_silence, and no more
    eot = run(hold=0.9)
    assert len(eot) == 1 and "fallback" in eot[0].reason and 1.6 <= eot[0].silence < 1.7


def test_duplex_eot_threshold_decays_with_silence_unless_the_model_hears_a_hold():
    """A likely end the model is not quite sure of (p(eot) 0.7 under a 0.9 threshold) is taken after a
    short wait when the tuning has a decay; never while the model reads the pause as a hold."""
    from bot.policy.base import ModelOutput
    from bot.policy.duplex import DuplexPolicy, DuplexTuning

    def first_eot(hold: float, decay: float) -> float | None:
        p = DuplexPolicy(PolicySettings(eot_threshold=0.9, max_end_of_turn_silence=2.0, max_hold_silence=3.0),
                         DuplexTuning(eot_confirm=1, eot_decay=decay))
        talk = ModelOutput(eot=0.0, hold=0.0, interrupt=0.0, backchannel=0.0)
        likely = ModelOutput(eot=0.7, hold=hold, interrupt=0.0, backchannel=0.0)
        out, _ = feed(p, [(0.9, 0.64, talk), (0.0, 3.5, likely)])
        return next((d.silence for k, _, d in out if k == "end_of_turn"), None)

    assert 1.9 <= first_eot(hold=0.1, decay=0.0) < 2.1  # no decay: only the fallback
    # decay 0.3: threshold 0.9 - 0.3 * silence / 2.0 reaches 0.7 at 1.33 s
    assert 1.3 <= first_eot(hold=0.1, decay=0.3) < 1.45
    assert 2.9 <= first_eot(hold=0.8, decay=0.3) < 3.1  # a hold: no decay, the longer fallback
