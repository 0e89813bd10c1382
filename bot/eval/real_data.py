"""A phone-bench set made of REAL recorded human speech (eval only), built from public sources
already on this machine (git mirrors made with the workspace's `fetch`, or any folder laid out
like the source). Nothing fetched is committed: this module rebuilds the set from the sources.

    duplexbot bench real-data --out out/real-set [--fsdd PATH] [--speech-commands PATH]
                              [--librispeech PATH] [--ljspeech PATH] [--pause 0.6] [--seed 0]
    duplexbot bench real-bargein out/real-set --parallel 10     (barge-in over the greeting)

Writes, in the format of bot/eval/phone_data.py (so `bench phone` and `eval turns` read it unchanged):
`DIR/manifest.json`, `DIR/wav/ID.wav` (mono 16 kHz), plus `DIR/bargein.json` (words said over the
bot's greeting, read by `bench real-bargein` only). Kinds of caller turn:

- "digits": a caller dictating a number (FSDD digits, 6 speakers; one speaker per number) in groups
  of 3-4 digits ("415 | 223 | 9081") with a pause of `--pause-min`..`--pause-max` s (0.6-1.0 s)
  between groups: every inter-group pause is a labelled hold, the end of the last digit the end of
  turn. FSDD digits are ISOLATED words recorded one at a time and joined here with 40-120 ms gaps
  inside a group, so the prosody inside a group is that of a list of words, not of a fluently
  spoken number; the pauses are digital silence;
- "word": a complete one-word answer, "yes" or "no" (Google Speech Commands v0.02 test files,
  one speaker each);
- "sentence": a complete read sentence (LibriSpeech clips, 4 speakers; one LJSpeech sentence);
- "sentence-pause": the same sentences with `--pause` s of digital silence opened in the widest
  natural gap between 30 % and 75 % of the sentence (a hold in real mid-sentence prosody).

Labels come from the audio as phone_data does (speech normalised to -20 dBFS RMS; a 10 ms frame
above -50 dBFS is speech; recordings are trimmed to their speech and padded with digital zeros so
room noise does not move the labels). Barge-in words: "stop" (must stop the bot) and "yes" (a
backchannel: must not), Speech Commands speakers disjoint from the "word" speakers.

Everything here is for evaluation only: nothing is tuned on it (no speaker split is needed; the
manifest says `"eval_only": true`). Every source, its licence, repository, commit and the speakers
used are recorded in the manifest under "sources".
"""
from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from models.audio import read_wav, resample, write_wav
from models.real_words import speaker_split

from .phone_data import (
    FRAME,
    LEAD_S,
    RATE,
    SPEECH_DBFS,
    TAIL_S,
    PhoneSample,
    frame_db,
    normalise,
    quiet_runs,
    speech_end,
)
from .real_bargein import build_bargein_turns, hibari_bot

MIRROR = Path("/work/.mirror")
DEFAULTS = {
    "fsdd": MIRROR / "Jakobovski+free-spoken-digit-dataset/repo",
    "speech_commands": MIRROR / "thegtagamer+PICO-tinyML-benchmark/repo",
    "librispeech": MIRROR / "CorentinJ+Real-Time-Voice-Cloning/repo",
    "ljspeech": MIRROR / "speechbrain+speechbrain/repo",
}
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GROUPINGS = ((3, 3, 4), (4, 4), (3, 4), (4, 4, 4), (3, 3))
SC_DIR = "MLTK_keyworkSpotting/dataset"  # where the Speech Commands v0.02 test files sit in their mirror
LIBRI_DIR = "samples"
LJ_PATH = "tests/samples/TTS/LJ050-0131.wav"
# transcripts (checked by ear and with Whisper tiny.en) of the clips used; the LibriSpeech clips of
# the Real-Time-Voice-Cloning samples are the SV2TTS reference utterances, 5 s each, whole sentences
SENTENCES = {
    "1320": "Well, what can't be done by main courage in war must be done by circumvention.",
    "3575": "that you are resolved to submit with resignation to that decision, whatever it might be.",
    "6829": "They left him then, for the jailer arrived to unlock the door and escort them to the office.",
    "8230": "Words are framed to express a level of thought which is by no means primitive.",
    "LJ050-0131": "unless a system is established for the frequent formal review of activities thereunder.",
}
SOURCES = {
    "fsdd": {"name": "Free Spoken Digit Dataset (FSDD)", "licence": "CC BY-SA 4.0",
             "url": "https://github.com/Jakobovski/free-spoken-digit-dataset",
             "repo": "Jakobovski/free-spoken-digit-dataset",
             "what": "isolated spoken digits, 8 kHz mono, 6 speakers x 50 takes of each digit"},
    "speech_commands": {"name": "Google Speech Commands v0.02 test files (Warden 2018)", "licence": "CC BY 4.0",
                        "url": "http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz",
                        "repo": "thegtagamer/PICO-tinyML-benchmark (vendored under MLTK_keyworkSpotting/dataset, "
                                "with the dataset's README and LICENSE)",
                        "what": "1 s clips of single words by volunteers; the speaker is the hash before _nohash_"},
    "librispeech": {"name": "LibriSpeech ASR corpus (Panayotov et al. 2015), 4 clips", "licence": "CC BY 4.0",
                    "url": "https://www.openslr.org/12", "repo": "CorentinJ/Real-Time-Voice-Cloning (samples/, "
                                                                "mp3, licence notice in samples/README.md)",
                    "what": "read audiobook sentences (LibriVox), speakers 1320, 3575, 6829, 8230"},
    "ljspeech": {"name": "LJ Speech 1.1 (Ito 2017), 1 clip", "licence": "public domain",
                 "url": "https://keithito.com/LJ-Speech-Dataset/",
                 "repo": "speechbrain/speechbrain (tests/samples/TTS)",
                 "what": "one read sentence by the LJ Speech speaker (LJ050-0131)"},
}


# ------------------------------------------------------------------ reading a source

class Tree(Protocol):
    def files(self, prefix: str) -> list[str]:
        """Paths (relative to the tree's root) of the files under `prefix`, sorted."""
        ...

    def read(self, path: str) -> bytes: ...

    def commit(self) -> str | None: ...


@dataclass(frozen=True)
class DirTree:
    """A plain folder laid out like the source."""
    root: Path

    def files(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def read(self, path: str) -> bytes:
        return (self.root / path).read_bytes()

    def commit(self) -> str | None:
        return None


@dataclass(frozen=True)
class GitTree:
    """A bare git directory (a `fetch` mirror), read at `rev` without a work tree."""
    gitdir: Path
    rev: str = "HEAD"

    def _git(self, *args: str) -> bytes:
        return subprocess.run(["git", "--git-dir", str(self.gitdir), *args], capture_output=True, check=True,
                              timeout=120).stdout

    def files(self, prefix: str) -> list[str]:
        out = self._git("ls-tree", "-r", "--name-only", self.rev, "--", prefix.rstrip("/") + "/")
        return sorted(out.decode().splitlines())

    def read(self, path: str) -> bytes:
        return self._git("cat-file", "blob", f"{self.rev}:{path}")

    def commit(self) -> str | None:
        return self._git("rev-parse", self.rev).decode().strip()


def open_tree(path: str | Path) -> Tree:
    p = Path(path)
    if (p / "HEAD").is_file() and (p / "objects").is_dir():
        return GitTree(p)
    if p.is_dir():
        return DirTree(p)
    raise ValueError(f"{p}: neither a folder nor a bare git directory")


def decode(data: bytes, name: str) -> np.ndarray:
    """float32 mono at 16 kHz from WAV bytes (any rate) or, through PyAV, any compressed format."""
    if name.lower().endswith(".wav"):
        x, sr = read_wav(data)
        return resample(x.mean(axis=0).astype(np.float32), sr, RATE).astype(np.float32)
    from faster_whisper.audio import decode_audio

    return np.asarray(decode_audio(io.BytesIO(data), sampling_rate=RATE), np.float32)


# ------------------------------------------------------------------ audio helpers

def trim_speech(x: np.ndarray, rel_db: float = -40.0, floor_margin_db: float = 8.0) -> np.ndarray:
    """Cut a recording to its speech: from the first to the last 10 ms frame above both `rel_db`
    under the loudest frame and `floor_margin_db` over the noise floor (10th percentile frame; a
    recording that is speech throughout has no floor: then 10 dB under the loudest frame)."""
    e = frame_db(x)
    if e.size == 0:
        return x[:0]
    thr = max(e.max() + rel_db, min(float(np.percentile(e, 10)) + floor_margin_db, e.max() - 10))
    on = np.flatnonzero(e > thr)
    return x[on[0] * FRAME:(on[-1] + 1) * FRAME].astype(np.float32) if on.size else x[:0]


def snr_db(x: np.ndarray) -> float:
    """Loudest 10 ms frame over the noise floor (10th percentile frame), dB."""
    e = frame_db(x)
    return float(e.max() - np.percentile(e, 10)) if e.size else 0.0


def widest_gap(x: np.ndarray, lo: float = 0.3, hi: float = 0.75, rel_db: float = -30.0) -> int | None:
    """Sample index at the middle of the longest run of frames `rel_db` under the loudest frame
    between `lo` and `hi` of the recording (a natural pause between words), or None."""
    e = frame_db(x)
    quiet = e < e.max() + rel_db if e.size else np.zeros(0, bool)
    runs = quiet_runs(quiet, int(lo * e.size), int(hi * e.size))
    if not runs:
        return None
    i, j = max(runs, key=lambda r: r[1] - r[0])  # the first of the longest
    return ((i + j) // 2) * FRAME


def _silence(s: float) -> np.ndarray:
    return np.zeros(int(round(s * RATE)), np.float32)


def _labels(y: np.ndarray, cuts: Sequence[tuple[int, int]]) -> tuple[tuple[float, float], ...]:
    """Holds: for each inserted silence [c0, c1) (samples), the last speech frame before it to
    the first after it."""
    db = frame_db(y)
    out = []
    for c0, c1 in cuts:
        f0, f1 = c0 // FRAME, c1 // FRAME
        before = np.flatnonzero(db[:f0] > SPEECH_DBFS)
        after = np.flatnonzero(db[f1:] > SPEECH_DBFS)
        t0 = (before[-1] + 1) * FRAME / RATE if before.size else f0 * FRAME / RATE
        t1 = (f1 + after[0]) * FRAME / RATE if after.size else f1 * FRAME / RATE
        out.append((round(float(t0), 3), round(float(t1), 3)))
    return tuple(out)


def assemble(parts: Sequence[np.ndarray], gaps: Sequence[float], holds: Sequence[bool]
             ) -> tuple[np.ndarray, float, tuple[tuple[float, float], ...]]:
    """Join `parts` with `gaps[i]` s of silence after part i; the gaps flagged in `holds` are
    labelled holds. Leading/trailing silence as phone_data. -> (audio, end, holds)."""
    if len(gaps) != len(parts) - 1 or len(holds) != len(gaps):
        raise ValueError("need one gap and one hold flag between each two parts")
    pieces = [_silence(LEAD_S)]
    cuts = []
    pos = pieces[0].size
    for i, p in enumerate(parts):
        pieces.append(p)
        pos += p.size
        if i < len(gaps):
            g = _silence(gaps[i])
            if holds[i]:
                cuts.append((pos, pos + g.size))
            pieces.append(g)
            pos += g.size
    pieces.append(_silence(TAIL_S))
    y = np.concatenate(pieces).astype(np.float32)
    return y, speech_end(y), _labels(y, cuts)


# ------------------------------------------------------------------ the sources

FSDD_NAME = re.compile(r"(?:^|/)(\d)_([a-z]+)_(\d+)\.wav$")
SC_NAME = re.compile(r"(?:^|/)([a-z_]+)/([0-9a-f]{8})_nohash_(\d+)\.wav$")


def fsdd_index(tree: Tree) -> dict[str, dict[int, list[str]]]:
    """speaker -> digit -> paths, from recordings/{digit}_{speaker}_{index}.wav."""
    idx: dict[str, dict[int, list[str]]] = {}
    for path in tree.files("recordings"):
        m = FSDD_NAME.search(path)
        if m:
            idx.setdefault(m.group(2), {}).setdefault(int(m.group(1)), []).append(path)
    return idx


def sc_index(tree: Tree, words: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """word -> speaker -> paths, from {SC_DIR}/{word}/{speaker}_nohash_{n}.wav."""
    idx: dict[str, dict[str, list[str]]] = {}
    for w in words:
        for path in tree.files(f"{SC_DIR}/{w}"):
            m = SC_NAME.search(path)
            if m and m.group(1) == w:
                idx.setdefault(w, {}).setdefault(m.group(2), []).append(path)
    return idx


@dataclass
class Built:
    samples: list[PhoneSample] = field(default_factory=list)
    bargein: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def used(self, key: str, tree: Tree, speaker: str, path: str, audio: np.ndarray) -> None:
        """Record one source file used (`audio`: what was kept of it, for the seconds of real speech)."""
        src = self.sources.setdefault(key, {**SOURCES[key], "commit": tree.commit(), "speakers": [], "files": 0,
                                            "seconds": 0.0})
        if speaker not in src["speakers"]:
            src["speakers"].append(speaker)
        src["files"] += 1
        src["seconds"] += audio.size / RATE


def build_digits(tree: Tree, n: int, rng: np.random.Generator, pause: tuple[float, float],
                 built: Built, out: Path, log: Callable[[str], None]) -> None:
    idx = fsdd_index(tree)
    speakers = sorted(s for s, d in idx.items() if len(d) == 10)
    if not speakers:
        raise ValueError("FSDD: no speaker with all ten digits under recordings/")
    for k in range(n):
        spk = speakers[k % len(speakers)]
        grouping = GROUPINGS[int(rng.integers(len(GROUPINGS)))]
        digits = [int(d) for d in rng.integers(0, 10, sum(grouping))]
        parts = []
        for d in digits:
            path = idx[spk][d][int(rng.integers(len(idx[spk][d])))]
            parts.append(normalise(trim_speech(decode(tree.read(path), path))))
            built.used("fsdd", tree, spk, path, parts[-1])
        gaps, holds = [], []
        ends = np.cumsum(grouping)[:-1]
        for i in range(len(digits) - 1):
            brk = (i + 1) in ends
            gaps.append(float(rng.uniform(*pause)) if brk else float(rng.uniform(0.04, 0.12)))
            holds.append(bool(brk))
        y, end, hs = assemble(parts, gaps, holds)
        y = normalise(y)
        groups, i = [], 0
        for g in grouping:
            groups.append(" ".join(DIGIT_WORDS[d] for d in digits[i:i + g]))
            i += g
        _write(built, out, f"digits-{k:03d}", "digits", f"fsdd:{spk}", "fsdd", y, end, hs, " | ".join(groups), log)


def build_words(tree: Tree, n: int, rng: np.random.Generator, built: Built, out: Path,
                log: Callable[[str], None], barge_stop: int, barge_yes: int, min_snr: float = 30.0) -> None:
    """n complete one-word answers ("yes"/"no", alternating) and the barge-in words, each from a
    different speaker (clean clips only: loudest frame >= min_snr dB over the noise floor)."""
    idx = sc_index(tree, ("yes", "no", "stop"))
    taken: set[str] = set()

    def pick(word: str) -> tuple[str, str, np.ndarray] | None:
        spks = sorted(idx.get(word, {}))
        for i in rng.permutation(len(spks)):
            spk = spks[int(i)]
            if spk in taken or speaker_split(spk) != "test":  # the model trains on the other speakers
                continue
            path = sorted(idx[word][spk])[0]
            x = decode(tree.read(path), path)
            if snr_db(x) < min_snr:
                continue
            y = trim_speech(x)
            if y.size < int(0.15 * RATE):
                continue
            taken.add(spk)
            return spk, path, normalise(y)
        return None

    for k in range(n):
        word = ("yes", "no")[k % 2]
        got = pick(word)
        if got is None:
            log(f"speech commands: no more clean '{word}' speakers")
            break
        spk, path, y = got
        built.used("speech_commands", tree, spk, path, y)
        a, end, hs = assemble([y], [], [])
        _write(built, out, f"word-{k:03d}", "word", f"speech-commands:{spk}", "speech-commands", a, end, hs,
               word.capitalize() + ".", log)
    (out / "bargein").mkdir(parents=True, exist_ok=True)
    taken.clear()  # the barge-in set may use the answers' speakers again (one speaker per word within it)
    for word, count in (("stop", barge_stop), ("yes", barge_yes)):
        for k in range(count):
            got = pick(word)
            if got is None:
                log(f"speech commands: no more clean '{word}' speakers for barge-in")
                break
            spk, path, y = got
            built.used("speech_commands", tree, spk, path, y)
            sid = f"barge-{word}-{k:03d}"
            write_wav(out / "bargein" / f"{sid}.wav", y, RATE)
            built.bargein.append({"id": sid, "wav": f"bargein/{sid}.wav", "word": word,
                                  "expect": "stop" if word == "stop" else "continue",
                                  "speaker": f"speech-commands:{spk}", "duration": round(y.size / RATE, 3)})


TALK_SECONDS = 1.5  # how much of a real sentence the barge-in set says over the bot


def build_sentences(libri: Tree | None, lj: Tree | None, pause: float, built: Built, out: Path,
                    log: Callable[[str], None]) -> None:
    clips: list[tuple[str, Tree, str, str]] = []  # (source key, tree, path, clip id)
    if libri is not None:
        for path in libri.files(LIBRI_DIR):
            m = re.search(r"(?:^|/)(\d+)_\d+\.(mp3|wav|flac)$", path)
            if m and m.group(1) in SENTENCES:
                clips.append(("librispeech", libri, path, m.group(1)))
    if lj is not None and LJ_PATH in lj.files(str(Path(LJ_PATH).parent)):
        clips.append(("ljspeech", lj, LJ_PATH, "LJ050-0131"))
    if clips:
        (out / "bargein").mkdir(parents=True, exist_ok=True)
    for k, (key, tree, path, cid) in enumerate(clips):
        spk = f"{key}:{cid.split('-')[0] if key == 'librispeech' else 'LJ'}"
        x = normalise(trim_speech(decode(tree.read(path), path)))
        built.used(key, tree, spk, path, x)
        y, end, hs = assemble([x], [], [])
        _write(built, out, f"sentence-{k:03d}", "sentence", spk, key, y, end, hs, SENTENCES[cid], log)
        # its first TALK_SECONDS said over the bot: a caller who starts talking is an interruption
        sid = f"barge-talk-{k:03d}"
        write_wav(out / "bargein" / f"{sid}.wav", x[:int(TALK_SECONDS * RATE)], RATE)
        built.bargein.append({"id": sid, "wav": f"bargein/{sid}.wav", "word": "talk", "expect": "stop",
                              "speaker": spk, "duration": TALK_SECONDS})
        cut = widest_gap(x)
        if cut is None:
            log(f"{path}: no natural gap for a pause, skipped")
            continue
        y, end, hs = assemble([x[:cut], x[cut:]], [pause], [True])
        words = SENTENCES[cid].split()
        at = int(round(len(words) * cut / x.size))
        _write(built, out, f"sentence-pause-{k:03d}", "sentence-pause", spk, key, y, end, hs,
               " ".join(words[:at]) + " | " + " ".join(words[at:]) + "  (| ~ where the pause is)", log)


def _write(built: Built, out: Path, sid: str, kind: str, speaker: str, voice: str, y: np.ndarray, end: float,
           holds: tuple[tuple[float, float], ...], text: str, log: Callable[[str], None]) -> None:
    (out / "wav").mkdir(parents=True, exist_ok=True)
    write_wav(out / "wav" / f"{sid}.wav", y, RATE)
    built.samples.append(PhoneSample(sid, f"wav/{sid}.wav", kind, speaker, voice, round(end, 3), holds, text))
    log(f"{sid:<18} {speaker:<28} end {end:5.2f} s  holds {list(holds)}  {text}")


def generate(out: Path, fsdd: str | Path | None, speech_commands: str | Path | None, librispeech: str | Path | None,
             ljspeech: str | Path | None, n_digits: int = 18, n_words: int = 20, pause: float = 0.6,
             digit_pause: tuple[float, float] = (0.6, 1.0), barge_stop: int = 10, barge_yes: int = 10,
             seed: int = 0, log: Callable[[str], None] = print,
             bot_voice: Callable[[str], np.ndarray] | None = None) -> dict[str, Any]:
    """Build the set under `out` from whichever sources are given (None or a missing path: skipped).
    With `bot_voice`, the barge-in words are also written as two-channel `eval turns` samples
    under `out/bargein-turns` (see build_bargein_turns)."""
    rng = np.random.default_rng(seed)
    built = Built()
    out.mkdir(parents=True, exist_ok=True)

    def tree(p: str | Path | None, what: str) -> Tree | None:
        if p is None:
            return None
        if not Path(p).exists():
            log(f"{what}: {p} not found, skipped")
            return None
        return open_tree(p)

    t = tree(fsdd, "FSDD")
    if t is not None and n_digits:
        build_digits(t, n_digits, rng, digit_pause, built, out, log)
    t = tree(speech_commands, "Speech Commands")
    if t is not None and (n_words or barge_stop or barge_yes):
        build_words(t, n_words, rng, built, out, log, barge_stop, barge_yes)
    build_sentences(tree(librispeech, "LibriSpeech"), tree(ljspeech, "LJ Speech"), pause, built, out, log)
    if not built.samples:
        raise ValueError("no samples: no source found (give --fsdd, --speech-commands, --librispeech, --ljspeech)")
    for src in built.sources.values():
        src["seconds"] = round(src["seconds"], 1)
        src["speakers"] = sorted(src["speakers"])
    manifest = {"samples": [s.to_dict() for s in built.samples],
                "licences": {k: f"{v['name']}: {v['licence']} ({v['url']})" for k, v in built.sources.items()},
                "sources": built.sources, "eval_only": True,
                "note": "real recorded speech, evaluation only (nothing is tuned on it); FSDD digits are isolated "
                        "words joined with short gaps; inserted pauses are digital silence",
                "made_by": "duplexbot bench real-data", "pause_s": pause, "digit_pause_s": list(digit_pause),
                "seed": seed}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (out / "bargein.json").write_text(json.dumps({"samples": built.bargein, "sources": built.sources,
                                                  "eval_only": True}, indent=2))
    if built.bargein and bot_voice is not None:
        build_bargein_turns(out / "bargein-turns", out, built.bargein, bot_voice, rng, log)
    return manifest


def synthetic_bargein(out: Path, n_stop: int = 10, n_yes: int = 10, log: Callable[[str], None] = print) -> int:
    """The comparison for the barge-in bench: "Stop." and "Yes." said by the phone set's held-out
    synthetic voices (bot/eval/phone_data.py: espeak-ng variants and hibari styles), in the same
    `bargein.json` format, so `bench real-bargein` runs both through one harness (and the same
    two-channel `bargein-turns/` for `eval turns`)."""
    from .phone_data import make_voices

    voices, licences = make_voices(["espeak", "hibari"])
    (out / "bargein").mkdir(parents=True, exist_ok=True)
    rows = []
    for word, count in (("stop", n_stop), ("yes", n_yes)):
        for k in range(count):
            v = voices[(k * 2 + (word == "yes")) % len(voices)]
            y = normalise(v.synth(word.capitalize() + "."))
            sid = f"barge-{word}-{k:03d}"
            write_wav(out / "bargein" / f"{sid}.wav", y, RATE)
            rows.append({"id": sid, "wav": f"bargein/{sid}.wav", "word": word,
                         "expect": "stop" if word == "stop" else "continue", "speaker": v.name,
                         "duration": round(y.size / RATE, 3)})
            log(f"{sid:<16} {v.name}")
    (out / "bargein.json").write_text(json.dumps({"samples": rows, "licences": licences, "synthetic": True},
                                                 indent=2))
    build_bargein_turns(out / "bargein-turns", out, rows, hibari_bot(), np.random.default_rng(0), log)
    return len(rows)


VIEWS = {"digits": ("digits",), "word": ("word",), "sentence": ("sentence", "sentence-pause")}


def write_views(out: Path) -> list[Path]:
    """Per-kind views of a built set for `eval turns` (which scores a whole folder): `OUT-digits`,
    `OUT-word`, `OUT-sentence`, each a manifest.json whose wav paths point into OUT."""
    m = json.loads((out / "manifest.json").read_text())
    made = []
    for name, kinds in VIEWS.items():
        rows = [dict(s, wav=f"../{out.name}/{s['wav']}") for s in m["samples"] if s["kind"] in kinds]
        if not rows:
            continue
        d = out.parent / f"{out.name}-{name}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "manifest.json").write_text(json.dumps({**m, "samples": rows, "view_of": str(out)}, indent=2))
        made.append(d)
    return made


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder for manifest.json, wav/, bargein/ (never committed: out/...)")
    for key, flag in (("fsdd", "--fsdd"), ("speech_commands", "--speech-commands"), ("librispeech", "--librispeech"),
                      ("ljspeech", "--ljspeech")):
        p.add_argument(flag, default=str(DEFAULTS[key]),
                       help=f"{SOURCES[key]['name']}: a bare git mirror or a folder laid out like "
                            f"{SOURCES[key]['repo']} ('' to skip)")
    p.add_argument("--digits", type=int, default=18, help="dictated numbers (FSDD)")
    p.add_argument("--words", type=int, default=20, help="one-word answers yes/no (Speech Commands)")
    p.add_argument("--pause", type=float, default=0.6, help="seconds of silence opened inside each sentence")
    p.add_argument("--pause-min", type=float, default=0.6, help="shortest pause between digit groups")
    p.add_argument("--pause-max", type=float, default=1.0, help="longest pause between digit groups")
    p.add_argument("--barge-stop", type=int, default=10, help="'stop' words for the barge-in bench")
    p.add_argument("--barge-yes", type=int, default=10, help="'yes' backchannels for the barge-in bench")
    p.add_argument("--no-bargein-turns", action="store_true",
                   help="skip the two-channel barge-in samples for `eval turns` (they need hibari-tts for the bot)")
    p.add_argument("--synthetic-bargein", action="store_true",
                   help="instead: write only a SYNTHETIC barge-in set (held-out TTS voices saying 'Stop.'/'Yes.') "
                        "to compare against in `bench real-bargein`")
    p.add_argument("--views", action="store_true",
                   help="also write OUT-digits, OUT-word, OUT-sentence: per-kind manifests for `eval turns`")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    if not (0.05 <= args.pause <= 5.0 and 0.05 <= args.pause_min <= args.pause_max <= 5.0) or min(
            args.digits, args.words, args.barge_stop, args.barge_yes) < 0:
        print("duplexbot: error: pauses must be 0.05-5 s (min <= max) and counts >= 0", file=sys.stderr)
        return 2
    if args.synthetic_bargein:
        n = synthetic_bargein(Path(args.out), args.barge_stop, args.barge_yes,
                              log=lambda s: print(s, file=sys.stderr, flush=True))
        print(f"{n} synthetic barge-in words -> {Path(args.out) / 'bargein.json'}")
        return 0
    try:
        m = generate(Path(args.out), args.fsdd or None, args.speech_commands or None, args.librispeech or None,
                     args.ljspeech or None, args.digits, args.words, args.pause, (args.pause_min, args.pause_max),
                     args.barge_stop, args.barge_yes, args.seed, log=lambda s: print(s, file=sys.stderr, flush=True),
                     bot_voice=None if args.no_bargein_turns or not (args.barge_stop or args.barge_yes)
                     else hibari_bot())
    except ValueError as e:
        print(f"duplexbot: error: {e}", file=sys.stderr)
        return 2
    if args.views:
        print("views: " + ", ".join(str(d) for d in write_views(Path(args.out))))
    kinds: dict[str, int] = {}
    for s in m["samples"]:
        kinds[s["kind"]] = kinds.get(s["kind"], 0) + 1
    spk = sum(len(v["speakers"]) for v in m["sources"].values())
    print(f"{len(m['samples'])} samples ({', '.join(f'{k} {v}' for k, v in kinds.items())}), {spk} real speakers "
          f"-> {Path(args.out) / 'manifest.json'} (+ bargein.json)")
    for k, v in m["sources"].items():
        print(f"  {k}: {v['licence']}, {len(v['speakers'])} speakers, {v['files']} files, {v['seconds']} s, "
              f"commit {v['commit']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="duplexbot bench real-data", description=(__doc__ or "").split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
