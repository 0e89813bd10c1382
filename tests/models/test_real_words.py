"""Real recorded words in the training calls (models/real_words.py, models/data.py)."""
from pathlib import Path

import numpy as np

from models import data as D
from models.audio import write_wav
from models.real_words import RATE, RealWords, clean_clip, load, speaker_split


def _word(rng: np.random.Generator, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 180 * t) * np.hanning(t.size)).astype(np.float32) + \
        rng.normal(0, 1e-4, t.size).astype(np.float32)


def test_speakers_split_the_same_way_everywhere():
    splits = [speaker_split(f"{i:08x}") for i in range(2000)]
    assert {s: round(splits.count(s) / 2000, 1) for s in ("train", "dev", "test")} == \
        {"train": 0.7, "dev": 0.1, "test": 0.2}
    assert speaker_split("0a7c2a8d") == speaker_split("0a7c2a8d")


def test_a_clip_is_cut_to_its_word_and_noisy_clips_are_left_out():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros(4000, np.float32), _word(rng), np.zeros(4000, np.float32)])
    x += rng.normal(0, 1e-4, x.size).astype(np.float32)
    y = clean_clip(x)
    assert y is not None and 0.3 * RATE < y.size < 0.55 * RATE
    noisy = x + rng.normal(0, 0.05, x.size).astype(np.float32)
    assert clean_clip(noisy) is None
    assert clean_clip(np.zeros(100, np.float32)) is None


def test_load_keeps_only_the_splits_speakers(tmp_path: Path):
    rng = np.random.default_rng(1)
    speakers = [f"{i:08x}" for i in range(40)]
    for word in ("stop", "yes", "left"):
        (tmp_path / word).mkdir()
        for spk in speakers:
            write_wav(tmp_path / word / f"{spk}_nohash_0.wav", _word(rng)[None], RATE)
    test = load(tmp_path, "test")
    train = load(tmp_path, "train")
    assert test.speakers and train.speakers and not (test.speakers & train.speakers)
    assert test.speakers == {s for s in speakers if speaker_split(s) == "test"}
    assert set(train.clips) == {"interrupt", "backchannel", "answer"}
    assert not load(tmp_path / "missing", "train")


def test_a_call_with_real_words_labels_them(tmp_path: Path):
    """With real words every interruption, backchannel and one-word answer may be a real clip: the
    generated call still labels each event, and its caller track holds the real audio."""
    rng = np.random.default_rng(2)
    real = RealWords({"interrupt": [_word(rng, 0.45)], "backchannel": [_word(rng, 0.3)],
                      "answer": [_word(rng, 0.4)]}, {"00000000"})
    bank = {(line, k): np.zeros(int(2.5 * RATE), np.float32) + np.float32(0.01) for line in D.T.BOT_LINES
            for k in range(3)}
    bank["real"] = {"train": real}
    old = D.REAL_SHARE
    D.REAL_SHARE = 1.0  # every chance taken
    try:
        events = {"interruption": 0, "backchannel": 0, "eot": 0}
        for seed in range(6):
            b = D.Builder(30.0, np.random.default_rng(seed), "train", bank)
            b.build()
            for k in events:
                events[k] += len(b.events[k])
            assert b.y[:, D.HEADS.index("speech")].any()
    finally:
        D.REAL_SHARE = old
    assert all(events.values()), events
