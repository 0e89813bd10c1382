"""The prosody probe on Whisper's encoder (bot/services/prosody.py): shipped, loadable, and it hears
a phrase going on where the words alone would call the turn complete (held-out voices)."""
import numpy as np
import pytest

from bot.eval.phone_data import ESPEAK_HELD_OUT, EspeakVoice, build_pause, build_short
from bot.eval.prosody_train import clip_for_asr
from bot.policy.fusion import FusionSettings
from bot.services.asr import AsrSettings, WhisperAsr
from bot.services.prosody import BLOCKS, ProsodyProbe, bundled_probe_path, load_probe, pause_features


def test_features_pool_the_last_blocks_and_survive_short_inputs():
    enc = np.arange(100 * 3, dtype=np.float32).reshape(100, 3)
    f = pause_features(enc, audio_samples=50 * 320)  # the audio ends at encoder frame 50
    assert f.shape == (BLOCKS * 3,)
    assert f[-3] == pytest.approx(enc[40:50, 0].mean())
    assert pause_features(enc, audio_samples=320).shape == (BLOCKS * 3,)  # 20 ms of audio


def test_shipped_probe_loads_and_round_trips(tmp_path):
    probe = load_probe("")
    assert probe is not None and probe.meta["dev_auc"] >= 0.9
    probe.save(tmp_path / "p.npz")
    again = ProsodyProbe.load(tmp_path / "p.npz")
    x = np.zeros((2, probe.w.size), np.float32)
    assert np.allclose(probe(x), again(x))
    assert load_probe("none") is None
    assert bundled_probe_path().exists()


@pytest.fixture(scope="module")
def asr():
    a = WhisperAsr(AsrSettings())
    yield a
    a.close()


def test_the_voice_goes_on_where_the_words_would_end(asr):
    voice = EspeakVoice(*ESPEAK_HELD_OUT[0])  # never trained on
    y, end, holds = build_pause(voice, "Can I bring a friend along", "to the dinner on Friday?", 0.8)
    ys, ends, _ = build_short(voice, "Can I bring a friend along?")
    # the audio the engine hands to ASR: the phrase and 0.16 s of the silence after it
    hold = asr.transcribe_detailed_sync(clip_for_asr(y, holds[0][0], 0.16))
    done = asr.transcribe_detailed_sync(clip_for_asr(ys, ends, 0.16))
    assert hold.p_continue is not None and done.p_continue is not None
    veto = FusionSettings().continue_veto
    assert hold.p_continue >= veto > done.p_continue, (hold, done)


def test_a_batch_is_the_oldest_utterance_and_those_of_its_length():
    from bot.services.asr import batch_of_oldest
    assert batch_of_oldest([48000, 144000, 48000, 48000, 64000], 16) == [0, 2, 3]
    assert batch_of_oldest([144000, 48000, 144000], 16) == [0, 2]  # the oldest is served first, whatever its length
    assert batch_of_oldest([48000] * 20, 16) == list(range(16))
    assert batch_of_oldest([], 16) == []
