"""The real-speech set builder (bot/eval/real_data.py) on a tiny synthetic stand-in laid out like the
sources (tone bursts for words): labels, kinds, speakers, manifest; and the barge-in scoring.
Nothing here reads /work/.mirror."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.eval import real_bargein as B
from bot.eval import real_data as R
from bot.eval.dataset import load_dataset
from bot.eval.phone_data import load_set
from models.audio import write_wav
from models.real_words import speaker_split


def burst(seconds: float, rate: int, freq: float = 300.0, noise_db: float = -70.0, pad: float = 0.0,
          seed: int = 0) -> np.ndarray:
    """A voiced-like tone burst at about -12 dBFS with `pad` s of quiet noise either side."""
    t = np.arange(int(seconds * rate)) / rate
    x = 0.35 * np.sin(2 * np.pi * freq * t) * np.hanning(t.size) ** 0.2
    n = int(pad * rate)
    y = np.concatenate([np.zeros(n), x, np.zeros(n)])
    return (y + np.random.default_rng(seed).normal(0, 10 ** (noise_db / 20), y.size)).astype(np.float32)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("src")
    fsdd = root / "fsdd" / "recordings"
    fsdd.mkdir(parents=True)
    for spk in ("alice", "bob"):
        for d in range(10):
            write_wav(fsdd / f"{d}_{spk}_0.wav", burst(0.3, 8000, 200 + 20 * d), 8000)
    sc = root / "sc" / R.SC_DIR
    # speakers of the test split only are played (the model trains on the others): 4 such per word,
    # and one train-split speaker per word that must never be picked
    test_ids = (f"{i:08x}" for i in range(10**6) if speaker_split(f"{i:08x}") == "test")
    train_ids = (f"{i:08x}" for i in range(10**6) if speaker_split(f"{i:08x}") == "train")
    for w, f in (("yes", 400.0), ("no", 500.0), ("stop", 600.0)):
        (sc / w).mkdir(parents=True)
        for k in range(4):
            write_wav(sc / w / f"{next(test_ids)}_nohash_0.wav", burst(0.4, 16000, f, pad=0.3, seed=k), 16000)
        write_wav(sc / w / f"{next(train_ids)}_nohash_0.wav", burst(0.4, 16000, f, pad=0.3, seed=9), 16000)
    libri = root / "libri" / R.LIBRI_DIR
    libri.mkdir(parents=True)
    two_words = np.concatenate([burst(0.8, 16000), np.zeros(1600, np.float32), burst(0.8, 16000, 350)])
    write_wav(libri / "1320_00000.wav", two_words, 16000)
    lj = root / "lj" / Path(R.LJ_PATH).parent
    lj.mkdir(parents=True)
    write_wav(lj / Path(R.LJ_PATH).name, two_words, 16000)
    return {"fsdd": root / "fsdd", "sc": root / "sc", "libri": root / "libri", "lj": root / "lj"}


@pytest.fixture(scope="module")
def built(sources: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("set")
    R.generate(out, sources["fsdd"], sources["sc"], sources["libri"], sources["lj"], n_digits=4, n_words=4,
               pause=0.6, digit_pause=(0.6, 1.0), barge_stop=2, barge_yes=2, seed=1, log=lambda _: None)
    return out


def test_the_set_loads_in_the_phone_bench_and_offline_eval_formats(built: Path):
    s = load_set(built)
    kinds = [x.kind for x in s.samples]
    assert kinds.count("digits") == 4 and kinds.count("word") == 4
    assert kinds.count("sentence") == 2 and kinds.count("sentence-pause") == 2
    assert len(load_dataset(built)) == len(s.samples)  # `eval turns` reads it unchanged


def test_dictated_numbers_hold_between_groups_and_end_after_the_last_digit(built: Path):
    s = load_set(built)
    for x in (x for x in s.samples if x.kind == "digits"):
        groups = x.text.split(" | ")
        assert len(x.holds) == len(groups) - 1 >= 1
        assert sum(len(g.split()) for g in groups) in (6, 7, 8, 12)
        for h0, h1 in x.holds:  # the inserted pause (0.6-1.0 s), measured from speech to speech
            assert 0.58 <= h1 - h0 <= 1.05
        audio, sr = s.audio(x)
        assert sr == R.RATE and x.end == pytest.approx(R.LEAD_S + (audio.size / sr - R.LEAD_S - R.TAIL_S), abs=0.03)
        assert x.speaker in ("fsdd:alice", "fsdd:bob")


def test_words_and_sentences_are_complete_turns_with_one_pause_version(built: Path):
    s = load_set(built)
    words = [x for x in s.samples if x.kind == "word"]
    assert [x.text for x in words] == ["Yes.", "No.", "Yes.", "No."] and all(not x.holds for x in words)
    for x in words:  # trimmed to the burst: padding noise is cut, end label ~ lead + 0.4 s
        assert x.end == pytest.approx(R.LEAD_S + 0.4, abs=0.06)
    pauses = [x for x in s.samples if x.kind == "sentence-pause"]
    whole = {x.speaker: x for x in s.samples if x.kind == "sentence"}
    for x in pauses:  # the pause goes in the natural 0.1 s gap, so the hold is that gap plus 0.6 s
        (h0, h1), = x.holds
        assert 0.6 <= h1 - h0 <= 0.75 and x.end == pytest.approx(whole[x.speaker].end + 0.6, abs=0.02)


def test_manifest_records_sources_speakers_and_eval_only(built: Path, sources: dict[str, Path]):
    m = json.loads((built / "manifest.json").read_text())
    assert m["eval_only"] is True
    src = m["sources"]
    assert set(src) == {"fsdd", "speech_commands", "librispeech", "ljspeech"}
    assert src["fsdd"]["licence"] == "CC BY-SA 4.0" and src["fsdd"]["speakers"] == ["alice", "bob"]
    assert src["speech_commands"]["licence"] == "CC BY 4.0" and src["ljspeech"]["licence"] == "public domain"
    assert src["fsdd"]["commit"] is None  # a plain folder; a git mirror records its commit
    b = json.loads((built / "bargein.json").read_text())["samples"]
    assert [(x["word"], x["expect"]) for x in b] == [("stop", "stop")] * 2 + [("yes", "continue")] * 2 + \
        [("talk", "stop")] * 2  # the start of each real sentence said over the bot
    words = [x for x in b if x["word"] != "talk"]
    assert len({(x["word"], x["speaker"]) for x in words}) == len(words)  # one speaker per word in the set
    sc_speakers = {x["speaker"] for x in m["samples"] if x["kind"] == "word"} | {x["speaker"] for x in words}
    assert all(speaker_split(x.split(":", 1)[1]) == "test" for x in sc_speakers)  # never a training voice
    assert all((built / x["wav"]).is_file() for x in b)


def test_missing_sources_are_skipped_and_none_at_all_is_an_error(sources: dict[str, Path], tmp_path: Path):
    R.generate(tmp_path / "a", sources["fsdd"], None, tmp_path / "nowhere", None, n_digits=2, n_words=0,
               barge_stop=0, barge_yes=0, log=lambda _: None)
    assert {x.kind for x in load_set(tmp_path / "a").samples} == {"digits"}
    with pytest.raises(ValueError, match="no samples"):
        R.generate(tmp_path / "b", None, None, None, None, log=lambda _: None)


def test_cli_builds_a_set(sources: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from bot.cli import main

    rc = main(["bench", "real-data", "--out", str(tmp_path / "c"), "--fsdd", str(sources["fsdd"]),
               "--speech-commands", "", "--librispeech", "", "--ljspeech", "", "--digits", "2"])
    assert rc == 0 and "2 samples (digits 2)" in capsys.readouterr().out


def test_barge_in_scoring():
    # a clear 0.25 s after the onset: stopped
    o = B.barge_outcome(onset=10.8, g0=10.0, clears=[11.05], burst_end=11.05, natural_s=4.0, window=2.0)
    assert o.stopped and o.stop_latency == pytest.approx(0.25)
    # no clear, the greeting played to its natural end: kept talking (right for a backchannel)
    o = B.barge_outcome(onset=10.8, g0=10.0, clears=[], burst_end=14.0, natural_s=4.0, window=2.0)
    assert not o.stopped and o.stop_latency is None
    # no clear but the audio ran out well before the greeting's end (the bot stopped sending)
    o = B.barge_outcome(onset=10.8, g0=10.0, clears=[], burst_end=11.3, natural_s=4.0, window=2.0)
    assert o.stopped and o.stop_latency == pytest.approx(0.5)
    # a clear after the window does not count
    o = B.barge_outcome(onset=10.8, g0=10.0, clears=[13.5], burst_end=13.5, natural_s=4.0, window=2.0)
    assert not o.stopped


def test_burst_end_follows_the_audio_playing_at_the_onset():
    frames = [(round(t, 2), -20.0) for t in np.arange(0.0, 2.0, 0.02)] + [(3.0, -20.0)]
    assert B._burst_end(frames, [], 1.0, -40.0) == pytest.approx(2.0)
    assert B._burst_end(frames, [1.5], 1.0, -40.0) == pytest.approx(1.5)


def test_barge_in_words_become_two_channel_eval_samples(sources: dict[str, Path], tmp_path: Path):
    R.generate(tmp_path, None, sources["sc"], None, None, n_words=2, barge_stop=1, barge_yes=1, seed=3,
               log=lambda _: None, bot_voice=lambda text: burst(len(text) / 20, 16000, 150.0))
    samples = {s.name: s for s in load_dataset(tmp_path / "bargein-turns")}
    assert sorted(samples) == ["barge-stop-000", "barge-yes-000"]  # 4 speakers per word: 2 answers, 1 each
    for name, s in samples.items():
        t = (s.labels.interruption or s.labels.backchannel)[0]
        assert 1.5 <= t <= 2.6 and not s.labels.eot
        assert bool(s.labels.interruption) == name.startswith("barge-stop")
        i = int(t * 16000)
        assert np.abs(s.audio[1, i - 1600:i]).max() > 0.05  # the bot is talking when the word starts
        bot_after = np.abs(s.audio[1, i + int(1.0 * 16000):i + int(1.2 * 16000)]).max()
        assert (bot_after == 0.0) == name.startswith("barge-stop")  # a stopped bot goes quiet, else talks on


def test_per_kind_views_load_as_their_own_sets(built: Path):
    made = R.write_views(built)
    assert [d.name.rsplit("-", 1)[1] for d in made] == ["digits", "word", "sentence"]
    sizes = [len(load_dataset(d)) for d in made]
    assert sizes == [4, 4, 4] and sum(sizes) == len(load_set(built).samples)
