"""DuplexPolicy turns model heads into decisions; SmartTurnPolicy's flow with a fake analyzer."""
import numpy as np
import pytest

from bot.eval.smart_turn import SmartTurnPolicy, whisper_features
from bot.policy.base import CHUNK_SAMPLES, CHUNK_SECONDS, ModelOutput, Observation, PolicySettings
from bot.policy.duplex import DuplexPolicy, model_output


def run(policy, frames):
    """frames: list of (vad, bot_speaking, ModelOutput) per chunk -> [(kind, t)]."""
    out = []
    for i, (vad, bot, m) in enumerate(frames):
        out += [(d.kind, round(d.t, 3)) for d in policy.step(Observation((i + 1) * CHUNK_SECONDS, vad, bot, 0.0, m))]
    return out


Z = ModelOutput(0, 0, 0, 0, 0)


def test_end_of_turn_once_per_turn_and_only_after_caller_speech():
    p = DuplexPolicy(PolicySettings(eot_threshold=0.6))
    silence_high = [(0.0, False, ModelOutput(0.9, 0, 0, 0, 0))] * 5  # no caller speech yet: nothing
    speech = [(0.9, False, Z)] * 10
    pause = [(0.0, False, ModelOutput(0.2, 0.8, 0, 0, 0.7))] * 5  # a hold
    done = [(0.0, False, ModelOutput(0.7, 0, 0, 0, 0))] * 10
    kinds = [k for k, _ in run(p, silence_high + speech + pause + speech + done)]
    assert kinds.count("end_of_turn") == 1
    assert kinds.count("hold") == 1 and kinds.count("backchannel_opportunity") == 1
    assert kinds.index("end_of_turn") > kinds.index("hold")


def test_interrupt_only_over_bot_speech_and_rearm():
    p = DuplexPolicy(PolicySettings(interrupt_threshold=0.5))
    hi = ModelOutput(0, 0, 0.9, 0, 0)
    frames = [(0.9, False, hi)] * 3 + [(0.9, True, hi)] * 5 + [(0.0, True, Z)] * 12 + [(0.9, True, hi)] * 3
    got = [d for d in run(p, frames) if d[0] == "interrupt"]
    assert len(got) == 2 and got[0][1] == pytest.approx(4 * CHUNK_SECONDS)


def test_backchannel_and_modes():
    bc = ModelOutput(0, 0, 0.1, 0.9, 0)
    frames = [(0.9, True, bc)] * 4
    assert [k for k, _ in run(DuplexPolicy(), frames) if k in ("interrupt", "backchannel")] == ["backchannel"]
    assert "interrupt" in [k for k, _ in run(DuplexPolicy(PolicySettings(backchannel_mode="interrupt")), frames)]
    hi = [(0.9, True, ModelOutput(0, 0, 0.99, 0, 0))] * 4
    assert "interrupt" not in [k for k, _ in run(DuplexPolicy(PolicySettings(allow_overlap=True)), hi)]


def test_missing_model_is_counted_and_model_output_checks_rows():
    p = DuplexPolicy()
    p.step(Observation(0.032, 0.0, False))
    assert p.missing_model == 1
    assert model_output(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])).backchannel == pytest.approx(0.4)
    with pytest.raises(ValueError):
        model_output([0.1, 0.2])


def test_smart_turn_policy_asks_after_vad_silence_and_falls_back_to_stop_secs():
    calls = []

    def analyzer(audio):
        calls.append(audio.size)
        return 0.2  # "incomplete"

    p = SmartTurnPolicy(analyzer)
    chunk = np.zeros(CHUNK_SAMPLES, np.float32)
    kinds = []
    for i in range(20 + 110):
        t = (i + 1) * CHUNK_SECONDS
        p.feed_audio(t, chunk)
        vad = 0.9 if i < 20 else 0.0
        kinds += [(d.kind, d.reason) for d in p.step(Observation(t, vad, False))]
    assert len(calls) == 1 and calls[0] >= 20 * CHUNK_SAMPLES
    assert ("end_of_turn", "stop_secs") in kinds and [k for k, _ in kinds].count("end_of_turn") == 1


def test_whisper_features_shape_and_range():
    f = whisper_features(np.sin(np.arange(16000) / 5.0).astype(np.float32))
    assert f.shape == (80, 800) and f.dtype == np.float32 and f.max() <= 2.5


def test_tuned_settings_come_from_the_manifest():
    from bot.policy.duplex import DuplexTuning, tuned
    from models.runtime import recommended
    rec = recommended()
    s, tuning = tuned(PolicySettings(vad_threshold=0.6))
    assert s.vad_threshold == 0.6 and s.eot_threshold == rec["eot_threshold"]
    assert isinstance(tuning, DuplexTuning) and tuning.interrupt_confirm == rec["interrupt_confirm"]
    assert DuplexPolicy(s, tuning).tuning == tuning


def test_one_end_of_turn_even_while_vad_still_hears_speech():
    p = DuplexPolicy(PolicySettings(eot_threshold=0.6))
    frames = [(0.9, False, Z)] * 10 + [(0.9, False, ModelOutput(0.9, 0, 0, 0, 0))] * 20
    assert [k for k, _ in run(p, frames)].count("end_of_turn") == 1
    more = [(0.0, False, Z)] * 5 + [(0.9, False, Z)] * 5 + [(0.0, False, ModelOutput(0.9, 0, 0, 0, 0))] * 3
    fresh = DuplexPolicy(PolicySettings(eot_threshold=0.6))
    assert [k for k, _ in run(fresh, frames + more)].count("end_of_turn") == 2  # a new segment, a new turn


def test_smart_turn_model_from_the_pipecat_wheel_without_importing_pipecat():
    import sys

    from bot.eval.smart_turn import SmartTurnModel, smart_turn_model_path
    try:
        path = smart_turn_model_path()
    except RuntimeError as e:
        pytest.skip(str(e))
    p = SmartTurnModel(path)(np.zeros(16000, np.float32))
    assert 0.0 <= p <= 1.0 and "pipecat" not in sys.modules
