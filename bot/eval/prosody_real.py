"""Probe examples from real recordings: a read sentence's own pauses go on, its end is done.

The prosody probe (bot/services/prosody.py) first learned from synthetic voices only, and on real
callers it is sure of the wrong thing: p(continue) 0.00 at "... express a level of thought which |"
and at "... for the frequent formal review, | of activities" (bench phone, real set), where both
speakers pause and go on. Real speakers pause inside a sentence at a clause, a list or a breath,
and their voice there carries what the probe must hear: no final lengthening, no final fall. So a
corpus of real sentences, each recorded whole, labels itself by its timing alone: every quiet gap
inside the speech is a pause that goes on (label 1), the end of the speech is done (label 0). No
transcript is needed and no pause is made up; the speaker's own pause is cut where it starts.

`natural_pauses` finds them by frame energy; `real_examples` makes the probe's features exactly as
`prosody_train.make_examples` does for synthetic voices (the engine's pre-roll before the onset, a
made-up 0.10-0.26 s of silence after the cut, half with a noise floor, half through a telephone
leg), grouped by speaker for the train/dev split.
"""
from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ..engine.session import PRE_ROLL
from .phone_data import FRAME, RATE, frame_db, quiet_runs

if TYPE_CHECKING:
    from ..services.asr import WhisperAsr
    from .real_data import Tree


@dataclass(frozen=True)
class RealSource:
    """A corpus of real recordings of whole sentences in a `fetch` mirror (or a folder laid out alike)."""
    mirror: str  # under real_data.MIRROR
    folder: str  # the folder of the tree holding the recordings
    pattern: str  # regex over file paths; group 1 is the speaker
    licence: str
    per_speaker: int = 0  # at most this many recordings a speaker (0: all)
    # only speakers of the duplex model's training split (models.real_words.speaker_split): the
    # Speech Commands test and dev speakers are the real sets' callers
    model_train_split: bool = False


# Fetched with the workspace's `fetch` (github:OWNER/NAME); nothing of them is committed here.
# Their speakers are disjoint from `bench real-data`'s test speakers (checked at run time too).
REAL_SOURCES = {
    # 351 LibriSpeech utterances (test-other, 10 speakers x 10; train-clean-100, 251 x 1), 2-23 s
    "librispeech": RealSource("resemble-ai+Resemblyzer/repo", "audio_data",
                              r"librispeech_[^/]+/(?:\d+/)?(\d+)-\d+-\d+\.flac$",
                              "CC BY 4.0 (LibriSpeech, Panayotov et al. 2015; vendored by resemble-ai/Resemblyzer)"),
    # 5000 short read sentences by 250 Mandarin-L1 speakers of English, adults and children, 2-15 s
    "speechocean762": RealSource("jimbozhang+speechocean762/repo", "WAVE", r"WAVE/(SPEAKER\d+)/[^/]+\.WAV$",
                                 "Apache-2.0 (speechocean762, Zhang et al. 2021: info.txt in its history; "
                                 "README: free for commercial and non-commercial use)", per_speaker=6),
    # one-word answers said alone ("yes", "no", "right"...): ends, as a whole turn of one word is
    "speech-commands": RealSource("thegtagamer+PICO-tinyML-benchmark/repo", "MLTK_keyworkSpotting/dataset",
                                  r"dataset/(?:yes|no|right|okay|on|off|go|stop|up|down|left)/([0-9a-f]{8})_nohash_\d+\.wav$",
                                  "CC BY 4.0 (Speech Commands v0.02, Warden 2018)", per_speaker=2,
                                  model_train_split=True),
}

MIN_GAP = 0.15  # seconds of quiet frames inside the speech that make a pause (a stop's closure is shorter)
EDGE = 0.4  # seconds: gaps this close to the speech's start or end are not pauses (onset, trailing breath)
REL_DB = -35.0  # a quiet frame: this far under the loudest frame ...
FLOOR_DB = 10.0  # ... and at most this far over the noise floor (the 10th percentile frame)


@dataclass(frozen=True)
class Timing:
    start: float  # seconds: first speech frame
    end: float  # seconds: end of the last speech frame
    pauses: tuple[float, ...]  # seconds: where each pause inside the speech starts


def natural_pauses(x: np.ndarray, min_gap: float = MIN_GAP, edge: float = EDGE) -> Timing | None:
    """The speech span of a recording of one spoken sentence and the pauses inside it, or None if
    it has no speech."""
    e = frame_db(np.asarray(x, np.float32))
    if e.size == 0:
        return None
    loud = e > max(e.max() + REL_DB, float(np.percentile(e, 10)) + FLOOR_DB)
    on = np.flatnonzero(loud)
    if on.size == 0:
        return None
    s0, s1 = int(on[0]), int(on[-1]) + 1
    sec = FRAME / RATE
    pauses = tuple(round(i * sec, 3) for i, j in quiet_runs(~loud, s0, s1)
                   if (j - i) * sec >= min_gap and (i - s0) * sec >= edge and (s1 - j) * sec >= edge)
    return Timing(s0 * sec, s1 * sec, pauses)


def cut(x: np.ndarray, start: float, t: float, after: float) -> np.ndarray:
    """What the engine hands to ASR for a phrase spoken from `start` and paused at `t`: from the
    pre-roll before the onset to t, then `after` seconds of silence (the VAD hangover and post-roll,
    the same for pauses and ends so the probe cannot learn the tail's length)."""
    a = max(0, int((start - PRE_ROLL) * RATE))
    return np.concatenate([x[a:int(t * RATE)], np.zeros(int(after * RATE), np.float32)]).astype(np.float32)


def corpus(name: str, tree: "Tree", folder: str, pattern: str, decode: Callable[[bytes, str], np.ndarray],
           limit_per_speaker: int = 0, exclude: frozenset[str] = frozenset(),
           keep: Callable[[str], bool] | None = None) -> list[tuple[str, str, np.ndarray]]:
    """(speaker, path, 16 kHz audio) for every file under `folder` of `tree` whose path matches
    `pattern`, the speaker being "NAME:" and its first group; speakers in `exclude` are left out."""
    rx = re.compile(pattern)
    per: dict[str, int] = {}
    out = []
    for path in tree.files(folder):
        m = rx.search(path)
        if not m:
            continue
        spk = f"{name}:{m.group(1)}"
        if spk in exclude or (keep is not None and not keep(m.group(1))):
            continue
        if limit_per_speaker and per.get(spk, 0) >= limit_per_speaker:
            continue
        per[spk] = per.get(spk, 0) + 1
        out.append((spk, path, decode(tree.read(path), path)))
    return out


def as_heard(x: np.ndarray, tel: bool, both_legs: bool, rng: np.random.Generator) -> list[tuple[bool, np.ndarray]]:
    """A training clip as each leg it goes through delivers it: through the telephone leg (`tel`) or
    not, or, with `both_legs`, both ways; with the leg (True: the telephone's)."""
    from models.audio import telephony

    return [(leg, telephony(x, RATE, rng).astype(np.float32) if leg else x)
            for leg in ((False, True) if both_legs else (tel,))]


def real_examples(recordings: Sequence[tuple[str, str, np.ndarray]], rng: np.random.Generator, asr: "WhisperAsr",
                  split_of: Callable[[str], str], progress: bool = True, both_legs: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Features, labels (1: goes on), split ("train"/"dev", by speaker) and leg (1: through the
    telephone leg) for every pause inside and every end of `recordings`; and counts for the record.
    A recording goes through the leg or not by chance, or, with `both_legs`, both ways."""
    from ..services.prosody import pause_features
    X, Y, G, L = [], [], [], []
    counts = {"recordings": 0, "pauses": 0, "ends": 0, "no_speech": 0}
    t0 = time.perf_counter()
    for k, (spk, _path, x) in enumerate(recordings):
        timing = natural_pauses(x)
        if timing is None or timing.end - timing.start < 0.1:
            counts["no_speech"] += 1
            continue
        counts["recordings"] += 1
        tel, noisy = rng.random() < 0.5, rng.random() < 0.5
        level = np.float32(10 ** (rng.uniform(-65, -45) / 20))
        for t, label in [(p, 1) for p in timing.pauses] + [(timing.end, 0)]:
            # where a detector calls the speech's end varies by tens of ms (the engine's VAD, another
            # set's labels): the cut moves with it, so the probe cannot learn one detector's edge
            t += float(rng.uniform(-0.03, 0.05))
            clip = cut(x, timing.start, t, float(rng.uniform(0.1, 0.26)))
            if noisy:
                clip = clip + rng.standard_normal(clip.size).astype(np.float32) * level
            for leg, heard in as_heard(clip, tel, both_legs, rng):
                X.append(pause_features(asr.encode_sync(heard), heard.size))
                Y.append(label)
                G.append(split_of(spk))
                L.append(int(leg))
            counts["pauses" if label else "ends"] += 1
        if progress and (k + 1) % 200 == 0:
            print(f"  {k + 1}/{len(recordings)} real recordings, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if not X:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.float32), np.zeros(0, str), np.zeros(0, int), counts
    return np.stack(X), np.asarray(Y, np.float32), np.asarray(G), np.asarray(L), counts
