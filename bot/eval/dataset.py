"""Turn-taking evaluation samples: `NAME.wav` (stereo, channel 0 caller, channel 1 bot, any rate)
plus `NAME.json` with event times in seconds:

    {"eot": [t, ...], "hold": [[t0, t1], ...], "interruption": [t, ...], "backchannel": [t, ...]}

A phone-benchmark set (`manifest.json` with mono caller samples, bot/eval/phone_data.py) loads too:
each sample becomes a call with a silent bot channel, its end as the end of turn and its pauses as
holds, followed by `PHONE_TAIL` seconds of silence, so `eval turns` and `bench phone` score the
same audio.

Loading validates everything and raises ValueError naming the file and what is wrong with it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.audio import read_wav, resample, telephony

RATE = 16000
PHONE_TAIL = 3.5  # seconds of silence after a phone-set sample: room for a late end of turn
KEYS = ("eot", "hold", "interruption", "backchannel")


@dataclass(frozen=True)
class Labels:
    eot: tuple[float, ...] = ()
    hold: tuple[tuple[float, float], ...] = ()
    interruption: tuple[float, ...] = ()
    backchannel: tuple[float, ...] = ()

    @classmethod
    def parse(cls, d: object, where: str, duration: float | None = None) -> "Labels":
        if not isinstance(d, dict):
            raise ValueError(f"{where}: labels must be a JSON object with keys {KEYS}")

        def time(v: object, what: str) -> float:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise ValueError(f"{where}: {what} must be a number of seconds, got {v!r}")
            if v < 0:
                raise ValueError(f"{where}: {what} is negative ({v})")
            if duration is not None and v > duration + 0.5:
                raise ValueError(f"{where}: {what} = {v} s is past the end of the audio ({duration:.2f} s)")
            return float(v)

        def times(key: str) -> tuple[float, ...]:
            v = d.get(key, [])
            if not isinstance(v, list):
                raise ValueError(f"{where}: {key!r} must be a list")
            return tuple(sorted(time(x, f"{key}[{i}]") for i, x in enumerate(v)))

        holds = d.get("hold", [])
        if not isinstance(holds, list):
            raise ValueError(f"{where}: 'hold' must be a list of [start, end] pairs")
        hs = []
        for i, h in enumerate(holds):
            if not isinstance(h, (list, tuple)) or len(h) != 2:
                raise ValueError(f"{where}: hold[{i}] must be a [start, end] pair, got {h!r}")
            t0, t1 = time(h[0], f"hold[{i}][0]"), time(h[1], f"hold[{i}][1]")
            if t1 <= t0:
                raise ValueError(f"{where}: hold[{i}] ends ({t1}) before it starts ({t0})")
            hs.append((t0, t1))
        return cls(times("eot"), tuple(sorted(hs)), times("interruption"), times("backchannel"))


@dataclass(frozen=True)
class Sample:
    name: str
    audio: np.ndarray  # float32 [2, samples] at 16 kHz (caller, bot)
    labels: Labels

    @property
    def duration(self) -> float:
        return self.audio.shape[1] / RATE


def load_sample(wav: Path, telephone: bool = False) -> Sample:
    wav = Path(wav)
    js = wav.with_suffix(".json")
    if not js.is_file():
        raise ValueError(f"{wav}: no labels file {js.name} next to it")
    audio, sr = read_wav(wav)
    if audio.shape[0] != 2:
        raise ValueError(f"{wav}: needs 2 channels (0 = caller, 1 = bot), has {audio.shape[0]}")
    if audio.shape[1] == 0:
        raise ValueError(f"{wav}: no audio")
    audio = resample(audio, sr, RATE)
    if telephone:  # both legs through 8 kHz mu-law and the telephone band
        audio = telephony(audio, RATE)
    try:
        d = json.loads(js.read_text())
    except ValueError as e:
        raise ValueError(f"{js}: not valid JSON ({e})") from None
    return Sample(wav.stem, audio.astype(np.float32), Labels.parse(d, str(js), audio.shape[1] / RATE))


def load_phone_set(folder: Path, telephone: bool = False, limit: int | None = None) -> list[Sample]:
    try:
        m = json.loads((folder / "manifest.json").read_text())
        entries = list(m["samples"])[:limit]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{folder / 'manifest.json'}: not a phone set ({e!r})") from None
    out = []
    for k, entry in enumerate(entries):
        where = f"{folder / 'manifest.json'} sample {k}"
        if not isinstance(entry, dict) or not isinstance(entry.get("wav"), str):
            raise ValueError(f"{where}: needs a \"wav\" path")
        audio, sr = read_wav(folder / entry["wav"])
        caller = resample(audio[0], sr, RATE)
        caller = np.concatenate([caller, np.zeros(int(PHONE_TAIL * RATE), np.float32)])
        both = np.stack([caller, np.zeros_like(caller)])
        if telephone:
            both = telephony(both, RATE)
        labels = Labels.parse({"eot": [entry.get("end")], "hold": entry.get("holds", [])}, where,
                              both.shape[1] / RATE)
        out.append(Sample(str(entry.get("id", k)), both.astype(np.float32), labels))
    return out


def load_dataset(folder: str | Path, telephone: bool = False, limit: int | None = None) -> list[Sample]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a directory")
    if (folder / "manifest.json").is_file():
        return load_phone_set(folder, telephone, limit)
    wavs = sorted(folder.glob("*.wav"))
    if not wavs:
        raise ValueError(f"{folder}: no .wav samples")
    orphans = sorted(p.name for p in folder.glob("*.json") if not p.with_suffix(".wav").exists())
    if orphans:
        raise ValueError(f"{folder}: labels without audio: {', '.join(orphans[:5])}")
    return [load_sample(w, telephone) for w in wavs[:limit]]
