"""Pipecat's Smart Turn v3.2 as a baseline policy (evaluation only).

The ONNX file is read from the installed `pipecat-ai` wheel (located with importlib, pipecat is
never imported, the model is never copied). It is run the way Pipecat runs it: when Silero VAD has
seen `vad_stop_secs` (0.2 s) of silence after caller speech, the caller audio from 0.5 s +
`vad_start_secs` before the turn's first speech up to now (the last 8 s at most, zero-padded at
the front) goes through Whisper-style log-mel features (80 bands, 8 s, 400-point FFT, hop 160,
waveform normalised first) into the model; p > 0.5 ends the turn, otherwise the turn ends after
`stop_secs` (3 s) of silence. Barge-in is Pipecat's default: any caller speech that VAD confirms
(`vad_start_secs`) while the bot talks interrupts it.

The model call is synchronous: this policy is for `duplexbot eval turns`, not the live engine.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import numpy.typing as npt

from ..policy.base import CHUNK_SAMPLES, CHUNK_SECONDS, Decision, DecisionKind, Observation, PolicySettings
from ..policy.completeness import WordEvidence

RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
SECONDS = 8


def smart_turn_model_path() -> Path:
    from ..engine.onnx import wheel_file

    return wheel_file("pipecat", "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
                      "pipecat-ai: scripts/install.sh installs it with --no-deps")


def _slaney_mel(f: npt.ArrayLike) -> np.ndarray:
    f = np.asarray(f, np.float64)
    lin = 3.0 * f / 200.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) * 27.0 / np.log(6.4), lin)


def _slaney_hz(m: npt.ArrayLike) -> np.ndarray:
    m = np.asarray(m, np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((m - 15.0) * np.log(6.4) / 27.0), 200.0 * m / 3.0)


def whisper_mel_filters() -> np.ndarray:
    """Slaney-scale, area-normalised triangles over 0-8 kHz: [201 bins, 80 mels]."""
    pts = _slaney_hz(np.linspace(_slaney_mel(0.0), _slaney_mel(RATE / 2), N_MELS + 2))
    fft_f = np.linspace(0, RATE // 2, N_FFT // 2 + 1)
    rise = (fft_f[:, None] - pts[None, :-2]) / np.diff(pts)[None, :-1]
    fall = (pts[None, 2:] - fft_f[:, None]) / np.diff(pts)[None, 1:]
    fb = np.maximum(0.0, np.minimum(rise, fall))
    return fb * (2.0 / (pts[2:] - pts[:-2]))[None, :]


_FILTERS = whisper_mel_filters()
_WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann


def whisper_features(audio: np.ndarray) -> np.ndarray:
    """Up to 8 s of 16 kHz audio (already front-padded by the caller) -> [80, 800] float32."""
    n = RATE * SECONDS
    x = np.asarray(audio, np.float32)[:n]
    x = np.pad(x, (0, n - x.size))
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2  # [frames, 201]
    logmel = np.log10(np.maximum(power @ _FILTERS, 1e-10)).T[:, :-1]
    logmel = np.maximum(logmel, logmel.max() - 8.0)
    return ((logmel + 4.0) / 4.0).astype(np.float32)


class SmartTurnModel:
    """audio (16 kHz float, any length) -> p(turn complete), as Pipecat's LocalSmartTurnAnalyzerV3."""

    def __init__(self, path: Path | None = None, threads: int = 1):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        so.intra_op_num_threads = threads
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        self.session = ort.InferenceSession(str(path or smart_turn_model_path()), so,
                                            providers=["CPUExecutionProvider"])
        self.calls = 0

    def __call__(self, audio: np.ndarray) -> float:
        n = RATE * SECONDS
        x = np.asarray(audio, np.float32)[-n:]
        x = np.pad(x, (n - x.size, 0))
        feats = whisper_features(x)[None]
        self.calls += 1
        return float(np.asarray(self.session.run(None, {"input_features": feats})[0]).reshape(-1)[0])


@dataclass(frozen=True)
class SmartTurnSettings:
    vad_confidence: float = 0.7  # Pipecat VADParams defaults
    vad_start_secs: float = 0.2
    vad_stop_secs: float = 0.2  # what Pipecat recommends with Smart Turn
    stop_secs: float = 3.0  # SmartTurnParams
    pre_speech_ms: float = 500.0
    max_duration_secs: float = 8.0
    threshold: float = 0.5


class SmartTurnPolicy:
    """TurnPolicy over Observations plus the caller audio (`feed_audio` before each `step`)."""

    name = "smart-turn"
    needs_model = False

    def __init__(self, analyzer: Callable[[np.ndarray], float], smart: SmartTurnSettings = SmartTurnSettings(),
                 settings: PolicySettings = PolicySettings()):
        self.analyzer = analyzer
        self.smart = smart  # Pipecat's VAD and Smart Turn parameters
        self.settings = settings  # the tenant's policy (TurnPolicy.settings): only allow_overlap applies here
        self.reset()

    def reset(self) -> None:
        keep = int((self.smart.pre_speech_ms / 1000 + self.smart.stop_secs + self.smart.max_duration_secs
                    + 1.0) / CHUNK_SECONDS)
        self.audio: deque[tuple[float, np.ndarray]] = deque(maxlen=keep)
        self.speaking = False
        self.voiced_run = 0.0
        self.silent_run = 0.0
        self.turn_start: float | None = None  # first speech of the pending turn (stream time)
        self.analyzed = False
        self.overlap_decided = False

    def update_settings(self, settings: PolicySettings) -> None:
        self.settings = settings

    def on_words(self, words: WordEvidence) -> list[Decision]:
        return []  # this policy ends turns on silence (or its own model) alone

    def expect_digits(self, n: int) -> None:
        pass  # its model ends the turn, however many digits were asked for

    def on_transcript(self, text: str, onset: float, t: float) -> list[Decision]:
        return []

    def feed_audio(self, t_end: float, chunk: np.ndarray) -> None:
        if chunk.shape != (CHUNK_SAMPLES,):
            raise ValueError(f"smart turn expects {CHUNK_SAMPLES}-sample chunks, got {chunk.shape}")
        self.audio.append((t_end, chunk))

    def _segment(self, now: float) -> np.ndarray:
        s = self.smart
        start = (self.turn_start or now) - (s.pre_speech_ms / 1000 + s.vad_start_secs)
        parts = [c for t, c in self.audio if t - CHUNK_SECONDS >= start - 1e-9]
        seg = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return seg[-int(s.max_duration_secs * RATE):]

    def step(self, obs: Observation) -> list[Decision]:
        s = self.smart
        out: list[Decision] = []
        voiced = obs.vad >= s.vad_confidence
        if voiced:
            self.voiced_run += CHUNK_SECONDS
            self.silent_run = 0.0
            if not self.speaking and self.voiced_run >= s.vad_start_secs - 1e-9:
                self.speaking = True
                onset = obs.t - self.voiced_run
                out.append(Decision(DecisionKind.SPEECH_START, obs.t, confidence=obs.vad, onset=onset))
                if obs.bot_speaking and not self.settings.allow_overlap:
                    out.append(Decision(DecisionKind.INTERRUPT, obs.t, confidence=obs.vad, onset=onset,
                                        reason="VAD speech over bot"))
                    self.turn_start = self.turn_start if self.turn_start is not None else onset
                elif not obs.bot_speaking and self.turn_start is None:
                    self.turn_start = onset
                self.analyzed = False
        else:
            self.voiced_run = 0.0
            self.silent_run += CHUNK_SECONDS
            if self.speaking and self.silent_run >= s.vad_stop_secs - 1e-9:
                self.speaking = False
                out.append(Decision(DecisionKind.SPEECH_END, obs.t))
            if (not self.speaking and self.turn_start is not None and not obs.bot_speaking):
                if not self.analyzed and self.silent_run >= s.vad_stop_secs - 1e-9:
                    self.analyzed = True
                    p = self.analyzer(self._segment(obs.t))
                    if p > s.threshold:
                        out.append(self._eot(obs.t, p, "smart turn"))
                    else:
                        out.append(Decision(DecisionKind.HOLD, obs.t, confidence=1 - p, reason=f"smart turn p={p:.2f}"))
                elif self.silent_run >= s.stop_secs - 1e-9:
                    out.append(self._eot(obs.t, 1.0, "stop_secs"))
        return out

    def _eot(self, t: float, p: float, why: str) -> Decision:
        self.turn_start = None
        return Decision(DecisionKind.END_OF_TURN, t, confidence=p, reason=why, silence=self.silent_run)
