"""Synthetic two-channel call generator with exact turn-taking labels.

    python -m models.data [--out models/data] [--train 1400 --dev 80 --test 160] [--seconds 30]

Each conversation alternates bot turns (channel 1, hibari-tts "heart" or espeak-ng) and caller turns
(channel 0: espeak-ng voices with varied speed/pitch, or, for a share of calls, hibari "heart" made
into several voices by a pitch/formant shift, so a neural voice's prosody is not only the bot's)
with: pauses inside caller turns after open clauses and fillers (holds), completed turns (end of turn),
backchannels, coughs and interruptions
over bot speech, bot echo leaking into the caller channel, background noise and talk, and (train
only, baked in) telephony degradation. Voices and texts are split train/dev/test.

Writes `OUT/SPLIT/NAME.wav` (stereo 16 kHz) + `NAME.json` (the eval format) and
`OUT/labels/SPLIT.npz` (per-32 ms-chunk targets used by training).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import zlib
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Protocol, TypedDict

import numpy as np

from . import texts as T
from .audio import read_wav, resample, telephony, write_wav
from .real_words import RealWords
from .real_words import load as load_real_words

RATE = 16000
CHUNK = 512
HEADS = ("eot", "hold", "interrupt", "backchannel", "bc_opportunity", "speech")

ESPEAK_LANGS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                "en-029", "en-us-nyc"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "Alex", "Alicia",
                   "Andrea", "Andy", "Annie", "anika", "aunty", "belinda", "benjamin", "caleb", "david", "ed",
                   "edward", "Gene", "iven", "john", "linda", "max", "Michael", "Mike", "paul", "pedro", "quincy",
                   "rob", "robert", "steph", "travis", "victor", "zac", "shelby", "norbert", "grandma", "grandpa",
                   "Lee", "Hugo", "Jacky", "Marco", "Denis", "boris", "gustave", "michel", "sandro", "adam"]


# hibari "heart" resampled by these factors (pitch and formants move together): one voice each.
# The unshifted voice (the simulator's caller) is held out for test.
HIBARI_SHIFTS = {"train": (0.84, 0.88, 0.92, 0.96, 1.04, 1.08, 1.12, 1.16), "dev": (0.9, 1.1),
                 "test": (0.94, 1.0, 1.06)}
HIBARI_SHARE = 0.4
# with real recorded words (--real-words): the share of interruptions, backchannels and one-word
# answers said by a real person instead of the call's synthetic voice (models/real_words.py)
REAL_SHARE = 0.4


def voice_split(variant: str) -> str:
    h = zlib.crc32(("voice:" + variant).encode()) % 10
    return "test" if h < 2 else "dev" if h == 2 else "train"


class _Tts(Protocol):
    """What we use of hibari's `Hibari` (an untyped package): text -> float32 audio at `sample_rate`."""
    sample_rate: int

    def __call__(self, text: str, speed: float = 1.0, seed: int | None = None) -> np.ndarray: ...


_HIBARI: _Tts | None = None


def _hibari() -> _Tts:
    global _HIBARI
    if _HIBARI is None:
        from hibari import Hibari
        _HIBARI = Hibari()
    return _HIBARI


@dataclass(frozen=True)
class Voice:
    lang: str
    variant: str
    speed: int
    pitch: int

    def synth(self, text: str, amp: int = 100) -> np.ndarray:
        cmd = ["espeak-ng", "--stdout", "-v", f"{self.lang}+{self.variant}", "-s", str(self.speed),
               "-p", str(self.pitch), "-a", str(amp), text]
        out = subprocess.run(cmd, capture_output=True, timeout=30).stdout
        x, sr = read_wav(out)
        return trim(resample(x[0], sr, RATE))

    @property
    def name(self) -> str:
        return f"{self.lang}+{self.variant}"


@dataclass(frozen=True)
class HibariVoice:
    """hibari "heart" at a speaking rate, shifted by `shift` (read at 24 kHz * shift)."""
    shift: float
    speed: float
    seed: int

    def synth(self, text: str) -> np.ndarray:
        tts = _hibari()
        seed = (self.seed + zlib.crc32(text.encode())) % 2**31
        x = np.asarray(tts(text, speed=self.speed, seed=seed), np.float32)
        return trim(resample(x, int(round(tts.sample_rate * self.shift)), RATE))

    @property
    def name(self) -> str:
        return f"hibari-heart@{self.shift:.2f}"


def trim(x: np.ndarray, rel_db: float = -45.0) -> np.ndarray:
    """Cut leading/trailing silence so clip edges are the exact speech edges."""
    if x.size == 0:
        return x
    hop = 160
    n = x.size // hop
    if n == 0:
        return x
    e = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    on = np.flatnonzero(20 * np.log10(e / (e.max() + 1e-9)) > rel_db)
    if on.size == 0:
        return x[:0]
    return x[on[0] * hop:(on[-1] + 1) * hop].copy()


def norm_rms(x: np.ndarray, db: float) -> np.ndarray:
    r = np.sqrt(np.mean(x ** 2) + 1e-12)
    return x * (10 ** (db / 20) / r)


def cough(rng: np.random.Generator) -> np.ndarray:
    """A cough / throat clear / knock: one to three bursts of shaped, coloured noise."""
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        n = int(rng.uniform(0.06, 0.25) * RATE)
        env = np.exp(-np.linspace(0, rng.uniform(3, 8), n)) * np.minimum(1, np.linspace(0, 8, n))
        noise = rng.standard_normal(n)
        lo, hi = rng.uniform(150, 600), rng.uniform(1500, 5000)
        spec = np.fft.rfft(noise)
        f = np.fft.rfftfreq(n, 1 / RATE)
        spec *= ((f > lo) & (f < hi)) * (1 + 3 * np.exp(-((f - rng.uniform(300, 900)) / 200) ** 2))
        parts.append(np.fft.irfft(spec, n) * env)
        parts.append(np.zeros(int(rng.uniform(0.03, 0.15) * RATE)))
    return np.concatenate(parts).astype(np.float32)


def noise_floor(n: int, rng: np.random.Generator, db: float) -> np.ndarray:
    w = rng.standard_normal(n).astype(np.float32)
    kind = rng.integers(3)
    if kind == 1:  # pink-ish
        spec = np.fft.rfft(w)
        spec /= np.sqrt(np.maximum(np.arange(spec.size), 1))
        w = np.fft.irfft(spec, n).astype(np.float32)
    elif kind == 2:  # brown-ish hum
        w = np.cumsum(w).astype(np.float32)
        w -= np.convolve(w, np.ones(801) / 801, mode="same")
    return norm_rms(w, db)


class Events(TypedDict):
    """What a generated call's JSON holds for scoring, in seconds."""
    eot: list[float]
    hold: list[list[float]]          # [pause start, pause end]
    interruption: list[float]
    backchannel: list[float]


class Builder:
    """Composes one conversation on two tracks and fills per-chunk labels."""

    def __init__(self, seconds: float, rng: np.random.Generator, split: str, bot_bank: dict):
        self.rng = rng
        self.split = split
        self.n = int(seconds * RATE) // CHUNK * CHUNK
        self.caller = np.zeros(self.n, np.float32)
        self.speech = np.zeros(self.n, np.float32)  # clean caller speech only (for the speech label)
        self.bot = np.zeros(self.n, np.float32)
        self.nchunks = self.n // CHUNK
        self.y = np.zeros((self.nchunks, len(HEADS)), np.float32)
        self.events: Events = {"eot": [], "hold": [], "interruption": [], "backchannel": []}
        variants = [v for v in ESPEAK_VARIANTS if voice_split(v) == split]
        self.voice: Voice | HibariVoice
        if bot_bank.get("hibari") and rng.random() < HIBARI_SHARE:
            self.voice = HibariVoice(float(rng.choice(HIBARI_SHIFTS[split])), float(rng.uniform(0.85, 1.25)),
                                     int(rng.integers(2**31)))
        else:
            self.voice = Voice(str(rng.choice(ESPEAK_LANGS)), str(rng.choice(variants)),
                               int(rng.integers(130, 215)), int(rng.integers(20, 85)))
        self.level = float(rng.uniform(-30, -16))
        self.bot_bank = bot_bank
        self.real: RealWords | None = (bot_bank.get("real") or {}).get(split)

    # -- placement --------------------------------------------------------------------------------
    def put(self, track: np.ndarray, clip: np.ndarray, t: float) -> float:
        i = int(t * RATE)
        if i >= self.n:
            return t
        j = min(self.n, i + clip.size)
        track[i:j] += clip[: j - i]
        return j / RATE

    def say(self, text: str, t: float, rel_db: float = 0.0) -> float:
        clip = self.voice.synth(text)
        if clip.size == 0:
            return t
        clip = norm_rms(clip, self.level + rel_db + self.rng.normal(0, 1.5))
        self.put(self.speech, clip, t)
        return self.put(self.caller, clip, t)

    def real_word(self, role: str) -> np.ndarray | None:
        """A real person's word for `role` ("interrupt", "backchannel", "answer"), REAL_SHARE of the
        time when real words were given, at the call's level."""
        if not self.real or self.rng.random() >= REAL_SHARE:
            return None
        clip = self.real.pick(role, self.rng)
        return None if clip is None else norm_rms(clip, self.level + self.rng.normal(0, 2.0))

    def put_caller(self, clip: np.ndarray, t: float) -> float:
        self.put(self.speech, clip, t)
        return self.put(self.caller, clip, t)

    def label(self, head: str, t0: float, t1: float, ramp: float = 0.0, start: float | None = None) -> None:
        """Target 1 on [t0, t1] with a linear ramp of `ramp` seconds starting at `start` (default t0)."""
        k = HEADS.index(head)
        c = (np.arange(self.nchunks) + 1) * CHUNK / RATE  # chunk end times
        s = t0 if start is None else start
        v = np.clip((c - s) / max(ramp, 1e-6), 0, 1) if ramp > 0 else (c >= t0).astype(np.float32)
        m = (c >= s) & (c <= t1)
        self.y[m, k] = np.maximum(self.y[m, k], v[m])

    # -- turns ------------------------------------------------------------------------------------
    def bot_turn(self, t: float) -> tuple[float, list[tuple[float, float]]]:
        lines = [str(x) for x in self.rng.choice(T.pool(T.BOT_LINES, self.split), int(self.rng.integers(1, 4)))]
        spans = []
        for k, line in enumerate(lines):
            clip = self.bot_bank[(line, int(self.rng.integers(3)))]
            end = self.put(self.bot, clip, t)
            spans.append((t, end))
            t = end + (self.rng.uniform(0.2, 0.6) if k + 1 < len(lines) else 0.0)
        return spans[-1][1], spans

    def caller_turn(self, t: float, first: str | None = None) -> float:
        """Caller speaks from t (maybe starting with `first` text); returns the end of turn."""
        rng, sp = self.rng, self.split
        pieces: list[str] = []
        if first is not None:
            pieces.append(first)
        nholds = 0 if first is not None and rng.random() < 0.5 else int(rng.choice([0, 1, 1, 2]))
        end = t
        if first is not None:
            end = self.say(first, t, rel_db=rng.uniform(0, 4))
            if rng.random() < 0.5:  # the interruption was the whole turn
                return end
            t = end + rng.uniform(0.15, 0.5)
            self.label("speech", end, t)  # short gaps inside speech count as speech
        for _ in range(nholds):
            if rng.random() < 0.55:
                frag = T.fill(str(rng.choice(T.pool(T.OPENINGS + T.QUESTION_OPENINGS, sp))), rng)
            else:
                frag = T.fill(str(rng.choice(T.pool(T.FRAGMENTS, sp))), rng)
            if rng.random() < 0.4:
                frag = str(rng.choice(T.pool(T.FILLERS, sp))) + ", " + frag
            frag += "," if rng.random() < 0.8 else ""
            end = self.say(frag, t)
            if rng.random() < 0.5:  # trailing filler after the open clause
                end = self.say(str(rng.choice(T.pool(T.FILLERS, sp))) + ",", end + rng.uniform(0.05, 0.4),
                               rel_db=-2)
            pause = float(rng.choice([rng.uniform(0.25, 0.8), rng.uniform(0.5, 1.6), rng.uniform(0.8, 2.4)]))
            self.events["hold"].append([round(end, 3), round(end + pause, 3)])
            self.label("hold", end + 0.08, end + pause)
            if pause > 0.6:
                self.label("bc_opportunity", end + 0.3, end + pause)
            if rng.random() < 0.08:  # a cough inside the pause
                c = norm_rms(cough(rng), self.level + rng.uniform(-10, 0))
                self.put(self.caller, c, end + rng.uniform(0.1, max(0.12, pause - c.size / RATE - 0.1)))
            t = end + pause
            cont = T.fill(str(rng.choice(T.pool(T.INTENTS + T.ANSWERS, sp))), rng) + "."
            if rng.random() < 0.2:
                cont = T.fill(str(rng.choice(T.pool(T.SHORT_QUESTIONS, sp))), rng)
            end = self.say(cont, t)
            t = end
        answer = self.real_word(str(rng.choice(["answer", "answer", "backchannel"]))) \
            if nholds == 0 and first is None else None
        if answer is not None:  # a real one-word answer ("Left.", "Yes.") is the whole turn
            return self.put_caller(answer, t)
        if nholds == 0 and first is None:
            r = rng.random()
            if r < 0.3:
                text = T.fill(str(rng.choice(T.pool(T.SHORT_QUESTIONS, sp))), rng)
                text = text[0].upper() + text[1:]
            elif r < 0.65:
                op = rng.choice(T.pool(T.OPENINGS, sp) + T.pool(T.QUESTION_OPENINGS, sp))
                intent = T.fill(str(rng.choice(T.pool(T.INTENTS, sp))), rng)
                q = op in T.QUESTION_OPENINGS
                text = f"{op} {intent}" + ("?" if q else ".")
            else:
                text = T.fill(str(rng.choice(T.pool(T.ANSWERS, sp))), rng) + "."
            if rng.random() < 0.25:
                text = str(rng.choice(T.pool(T.FILLERS, sp))) + ", " + text
            end = self.say(text, t)
        return end

    def build(self) -> None:
        rng = self.rng
        t = rng.uniform(0.2, 1.2)
        caller_first = rng.random() < 0.2
        while t < self.n / RATE - 7.0:
            if caller_first:
                caller_first = False
                eot = self.caller_turn(t)
            else:
                bot_end, spans = self.bot_turn(t)
                dur = bot_end - t
                r = rng.random()
                interrupted = None
                if r < 0.3 and dur > 1.6:  # interruption
                    onset = rng.uniform(t + 0.5, bot_end - 0.6)
                    stop = onset + rng.uniform(0.5, 1.4)
                    if stop < bot_end and int(stop * RATE) < self.n:
                        i = int(stop * RATE)
                        fade = min(320, self.n - i)
                        self.bot[i:i + fade] *= np.linspace(1, 0, fade, dtype=np.float32)
                        self.bot[i + fade:int(bot_end * RATE) + 1] = 0
                        bot_end = stop
                    interrupted = onset
                elif r < 0.75 and dur > 1.2:  # one or two backchannels / noises over bot speech
                    nb = 1 if rng.random() < 0.7 or dur < 4 else 2
                    slots = np.sort(rng.uniform(t + 0.4, bot_end - 0.6, nb))
                    last = -9.0
                    for onset in slots:
                        if onset - last < 1.8:
                            continue
                        real = self.real_word("backchannel")
                        if real is not None:
                            end = self.put_caller(real * np.float32(10 ** (rng.uniform(-12, -2) / 20)), onset)
                        elif rng.random() < 0.8:
                            bc = str(rng.choice(T.pool(T.BACKCHANNELS, self.split)))
                            end = self.say(bc, onset, rel_db=rng.uniform(-12, -2))
                        else:
                            c = norm_rms(cough(rng), self.level + rng.uniform(-8, 2))
                            end = self.put(self.caller, c, onset)
                        self.events["backchannel"].append(round(float(onset), 3))
                        self.label("backchannel", onset + 0.06, end + 0.15, ramp=0.1)
                        last = onset
                if interrupted is not None:
                    self.events["interruption"].append(round(float(interrupted), 3))
                    real = self.real_word("interrupt")
                    if real is not None:  # a real "stop", alone or before the caller's turn
                        eot = self.put_caller(real * np.float32(10 ** (rng.uniform(0, 4) / 20)), interrupted)
                        if rng.random() < 0.5:
                            gap = rng.uniform(0.15, 0.5)
                            self.label("speech", eot, eot + gap)
                            eot = self.caller_turn(eot + gap)
                    else:
                        text = T.fill(str(rng.choice(T.pool(T.INTERRUPTIONS, self.split))), rng)
                        eot = self.caller_turn(interrupted, first=text)
                    self.label("interrupt", interrupted + 0.05, min(interrupted + 1.2, max(eot, interrupted + 0.4)),
                               ramp=0.12)
                else:
                    start = bot_end + float(rng.choice([rng.uniform(0.15, 0.6), rng.uniform(0.4, 1.4)]))
                    if rng.random() < 0.08:  # a cough before answering
                        self.put(self.caller, norm_rms(cough(rng), self.level - 6), bot_end + 0.05)
                    eot = self.caller_turn(start)
            # end of turn: the bot answers after a gap; the label holds until it does
            gap = float(rng.choice([rng.uniform(0.9, 1.6), rng.uniform(1.2, 2.6)]))
            if eot >= self.n / RATE - 0.5:
                break
            self.events["eot"].append(round(float(eot), 3))
            self.label("eot", eot + 0.04, eot + gap, ramp=0.16, start=eot + 0.04)
            t = eot + gap
        self.finish()

    def finish(self) -> None:
        rng = self.rng
        # speech label from the clean caller track (10 ms energy, chunk-level any)
        from .audio import frame_rms
        fr = frame_rms(self.speech, 160)
        act = fr > 10 ** ((self.level - 25) / 20)
        chunk_act = np.array([act[int(i * 3.2):int((i + 1) * 3.2) + 1].any() for i in range(self.nchunks)])
        k = HEADS.index("speech")
        self.y[:, k] = np.maximum(self.y[:, k], chunk_act.astype(np.float32))
        # echo of the bot into the caller channel
        if rng.random() < 0.75:
            d = int(rng.uniform(0.01, 0.15) * RATE)
            echo = np.concatenate([np.zeros(d, np.float32), self.bot[:-d]])
            echo = np.convolve(echo, np.ones(3) / 3, mode="same").astype(np.float32)
            self.caller += echo * 10 ** (rng.uniform(-45, -18) / 20)
        # background talk
        if rng.random() < 0.2:
            other = Voice(str(rng.choice(ESPEAK_LANGS)), str(rng.choice(ESPEAK_VARIANTS)), 160, 50)
            tt = rng.uniform(0, 3)
            db = self.level + rng.uniform(-28, -16)
            while tt < self.n / RATE:
                s = other.synth(T.fill(str(rng.choice(T.INTENTS + T.ANSWERS)), rng))
                tt = self.put(self.caller, norm_rms(s, db), tt) + rng.uniform(0.5, 3)
        if rng.random() < 0.85:  # else digital silence between words, as a mu-law line or a codec's DTX gives
            self.caller += noise_floor(self.n, rng, float(rng.uniform(-75, -48)))
        if self.split == "train" and rng.random() < 0.4:
            loss = float(rng.choice([0.0, 0.0, 0.01, 0.03]))
            self.caller = telephony(self.caller, RATE, rng, loss)
            self.bot = telephony(self.bot, RATE, rng, 0.0)
        peak = max(np.abs(self.caller).max(), np.abs(self.bot).max(), 1e-6)
        if peak > 0.98:
            self.caller *= 0.98 / peak
            self.bot *= 0.98 / peak


def clip_events(events: Events, duration: float, margin: float = 0.5) -> Events:
    """Drop events too close to the end of the file to be judged."""
    end = duration - margin
    return {"eot": [t for t in events["eot"] if t <= end], "hold": [h for h in events["hold"] if h[1] <= end],
            "interruption": [t for t in events["interruption"] if t <= end],
            "backchannel": [t for t in events["backchannel"] if t <= end]}


_BOT_BANK: dict = {}


def _init(bank: dict) -> None:
    global _BOT_BANK
    _BOT_BANK = bank


def _make(job: tuple[str, str, int, float, int]) -> tuple[str, np.ndarray]:
    out, split, idx, seconds, seed = job
    rng = np.random.default_rng(seed)
    b = Builder(seconds, rng, split, _BOT_BANK)
    b.build()
    name = f"{split}_{idx:05d}"
    write_wav(Path(out) / split / f"{name}.wav", np.stack([b.caller, b.bot]), RATE)
    meta = dict(clip_events(b.events, b.n / RATE), voice=b.voice.name, speed=b.voice.speed)
    (Path(out) / split / f"{name}.json").write_text(json.dumps(meta))
    return name, b.y.astype(np.float16)


def bot_bank(cache: Path) -> dict:
    """Bot lines in three renditions: hibari-tts at two speeds and one espeak voice."""
    path = cache / "bot_bank.npz"
    if path.exists():
        z = np.load(path, allow_pickle=True)
        bank = z["bank"].item()
        if "hibari" not in bank:  # a cache from before hibari callers
            bank["hibari"] = importlib.util.find_spec("hibari") is not None
        return bank
    from tqdm import tqdm
    bank = {}
    tts: _Tts | None
    try:
        tts = _hibari()
    except Exception:  # no hibari: espeak only
        tts = None
    for line in tqdm(T.BOT_LINES, desc="bot voice"):
        for k, speed in enumerate((1.0, 1.12)):
            if tts is not None:
                x = np.asarray(tts(line, speed=speed, seed=0), np.float32)
                bank[(line, k)] = norm_rms(trim(resample(x, tts.sample_rate, RATE)), -20)
            else:
                bank[(line, k)] = norm_rms(Voice("en-us", "f3", 170 + 20 * k, 50).synth(line), -20)
        bank[(line, 2)] = norm_rms(Voice("en-gb", "f2", 175, 55).synth(line), -20)
    bank["hibari"] = tts is not None
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, bank=np.array(bank, dtype=object))
    return bank


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm
    ap = argparse.ArgumentParser(prog="python -m models.data", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="models/data")
    ap.add_argument("--train", type=int, default=1400)
    ap.add_argument("--dev", type=int, default=80)
    ap.add_argument("--test", type=int, default=160)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--real-words", default=None,
                    help="folder of Speech Commands clips (WORD/SPEAKER_nohash_N.wav): real voices in the calls, "
                         "split by speaker (models/real_words.py)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    bank = bot_bank(out / "cache")
    if a.real_words:
        bank["real"] = {sp: load_real_words(Path(a.real_words), sp) for sp in ("train", "dev", "test")}
        for sp, rw in bank["real"].items():
            print(f"real words, {sp}: {sum(len(v) for v in rw.clips.values())} clips, {len(rw.speakers)} speakers")
    (out / "labels").mkdir(parents=True, exist_ok=True)
    for split, count in (("test", a.test), ("dev", a.dev), ("train", a.train)):
        if count <= 0:
            continue
        (out / split).mkdir(parents=True, exist_ok=True)
        base = {"train": 0, "dev": 1_000_000, "test": 2_000_000}[split] + a.seed * 10_000_000
        jobs = [(str(out), split, i, a.seconds, base + i) for i in range(count)]
        labels = {}
        with Pool(a.workers, initializer=_init, initargs=(bank,)) as pool:
            for name, y in tqdm(pool.imap_unordered(_make, jobs, chunksize=4), total=count, desc=split):
                labels[name] = y
        np.savez_compressed(out / "labels" / f"{split}.npz", **labels)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
