"""Caller scripts: JSON, validated up front with errors that name the step and the problem.

    {"name": "hours", "voice": "heart",
     "steps": [{"wait_for_silence": 0.6},
               {"say": "What are your opening hours?"},
               {"wait_for_bot_speech": 1.0},
               {"say": "Wait, stop.", "kind": "interruption"},
               {"say": {"wav": "cough.wav"}, "kind": "noise"},
               {"noise": "cough"},
               {"dtmf": "0"},
               {"pause": 1.5},
               {"hangup": true}]}

`kind` tells the metrics what a caller sound is: "turn" (default: the bot should answer),
"interruption" (over bot speech: the bot should stop), "backchannel" or "noise" (over bot speech:
the bot should keep talking).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from sip.dtmf import DIGITS

from ..audio.frame import SUPPORTED_RATES
from ..audio.resample import resample
from ..audio.wav import AudioFileError, read_wav

RATE = 16000
KINDS = ("turn", "interruption", "backchannel", "noise")


class ScriptError(ValueError):
    """The script is malformed; the message names the step and what is wrong."""


@dataclass(frozen=True)
class Say:
    audio: np.ndarray  # float32 at 16 kHz
    text: str
    kind: str


@dataclass(frozen=True)
class WaitForBotSpeech:
    seconds: float
    timeout: float


@dataclass(frozen=True)
class WaitForSilence:
    seconds: float
    timeout: float


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class SendDtmf:
    digits: str


@dataclass(frozen=True)
class HangupStep:
    pass


Step = Say | WaitForBotSpeech | WaitForSilence | Pause | SendDtmf | HangupStep


@dataclass(frozen=True)
class Script:
    name: str
    steps: tuple[Step, ...]


def cough(seed: int = 3, rate: int = RATE) -> np.ndarray:
    """A synthetic cough: two short bursts of band-limited noise with a fast attack."""
    rng = np.random.default_rng(seed)
    out = []
    for dur, amp in ((0.16, 0.35), (0.12, 0.22)):
        n = int(dur * rate)
        noise = rng.standard_normal(n)
        noise = np.convolve(noise, np.ones(6) / 6, mode="same")  # soften the top end
        env = np.exp(-np.linspace(0, 5, n)) * np.minimum(1, np.linspace(0, 25, n))
        out += [amp * noise * env / np.abs(noise).max(), np.zeros(int(0.06 * rate))]
    return np.concatenate(out).astype(np.float32)


def _num(step: dict, key: str, where: str, lo: float = 0.0, hi: float = 600.0) -> float:
    v = step.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v <= hi):
        raise ScriptError(f"{where}: '{key}' must be a number of seconds between {lo} and {hi}, got {v!r}")
    return float(v)


class Voice(Protocol):
    """Text to float32 speech at 24 kHz (hibari's `Hibari` instance); `seed` fixes its noise."""

    def __call__(self, text: str, speed: float = 1.0, seed: int | None = None) -> np.ndarray: ...


def _tts() -> Voice:
    from hibari import Hibari

    return Hibari()


def parse_script(data: object, base_dir: Path = Path("."), tts: Voice | None = None) -> Script:
    if not isinstance(data, dict):
        raise ScriptError("script: the top level must be a JSON object with a 'steps' list")
    steps_in = data.get("steps")
    if not isinstance(steps_in, list) or not steps_in:
        raise ScriptError("script: 'steps' must be a non-empty list")
    voice = data.get("voice", "heart")
    if voice != "heart":
        raise ScriptError(f"script: voice {voice!r} is not available offline (only 'heart' ships in hibari-tts)")
    steps: list[Step] = []
    for i, st in enumerate(steps_in):
        where = f"step {i + 1}"
        if not isinstance(st, dict):
            raise ScriptError(f"{where}: must be an object such as {{\"say\": \"hello\"}}, got {st!r}")
        known = {"say", "noise", "wait_for_bot_speech", "wait_for_silence", "pause", "hangup", "dtmf"} & st.keys()
        if len(known) != 1:
            raise ScriptError(f"{where}: needs exactly one of say, noise, wait_for_bot_speech, wait_for_silence, "
                              f"pause, dtmf, hangup (got keys {sorted(st)})")
        (op,) = known
        kind = st.get("kind", "noise" if op == "noise" else "turn")
        if kind not in KINDS:
            raise ScriptError(f"{where}: kind must be one of {KINDS}, got {kind!r}")
        timeout = st.get("timeout", 20.0)
        if op == "say":
            v = st["say"]
            speed = st.get("speed", 1.0)
            if isinstance(v, str) and v.strip():
                tts = tts or _tts()
                audio = resample(np.asarray(tts(v, speed=float(speed), seed=i), np.float32), 24000, RATE)
                steps.append(Say(audio, v, kind))
            elif isinstance(v, dict) and isinstance(v.get("wav"), str):
                path = (base_dir / v["wav"]).resolve()
                try:
                    audio, rate = read_wav(path)
                except AudioFileError as e:
                    raise ScriptError(f"{where}: {e}") from None
                if rate not in SUPPORTED_RATES:
                    raise ScriptError(f"{where}: {path} has an unsupported sample rate {rate} Hz "
                                      f"(supported: {', '.join(map(str, SUPPORTED_RATES))})")
                steps.append(Say(resample(audio[0], rate, RATE), str(v.get("text", "")), kind))
            else:
                raise ScriptError(f"{where}: 'say' must be text or {{\"wav\": \"file.wav\"}}, got {v!r}")
        elif op == "noise":
            if st["noise"] != "cough":
                raise ScriptError(f"{where}: the only built-in noise is 'cough', got {st['noise']!r}")
            steps.append(Say(cough(seed=i), "(cough)", kind))
        elif op == "wait_for_bot_speech":
            steps.append(WaitForBotSpeech(_num(st, op, where), _num({"t": timeout}, "t", where, 0.1)))
        elif op == "wait_for_silence":
            steps.append(WaitForSilence(_num(st, op, where), _num({"t": timeout}, "t", where, 0.1)))
        elif op == "pause":
            steps.append(Pause(_num(st, op, where)))
        elif op == "dtmf":
            d = st["dtmf"]
            if not isinstance(d, str) or not d or any(c not in DIGITS for c in d):
                raise ScriptError(f"{where}: 'dtmf' must be digits from 0-9 * # A-D, got {d!r}")
            steps.append(SendDtmf(d))
        else:
            steps.append(HangupStep())
    return Script(str(data.get("name", "call")), tuple(steps))


def load_script(path: str | Path, tts: Voice | None = None) -> Script:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as e:
        raise ScriptError(f"{p}: cannot read the script ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise ScriptError(f"{p}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    return parse_script(data, p.parent, tts)
