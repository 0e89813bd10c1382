"""`duplexbot eval turns`: run turn-taking policies over a labelled dataset on the same audio.

Per-chunk inputs are computed once for all samples in batched streaming calls (Silero VAD on the
caller channel, the duplex model on both channels), then every policy replays them chunk by chunk
through the same `Observation`s the engine feeds it. Policies:

- vad-timeout: the baseline policy with LiveKit's settings (0.5 s endpointing, 0.5 s minimum
  interruption speech; no ASR here, so barge-in is by duration only).
- vad-timeout-pipecat: the baseline with Pipecat's 0.8 s silence and VAD-start (0.2 s) barge-in.
- smart-turn: Pipecat Smart Turn v3.2 (see bot/eval/smart_turn.py).
- duplex: the shipped duplex model with the DuplexPolicy (its heads and silence fallback only).
- duplex-words: the same model fused with the words at each pause (bot/policy/fusion.py): at every
  speech end the caller's turn so far is transcribed by the engine's Whisper tiny.en, and the
  evidence reaches the policy `WORDS_DELAY` later, as the engine's speculative ASR does.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.session import POST_ROLL, PRE_ROLL  # the audio the engine hands to ASR around a phrase
from ..policy.base import CHUNK_SAMPLES, CHUNK_SECONDS, Decision, Observation, PolicySettings, TurnPolicy
from .dataset import Sample
from .metrics import Scores, score, summary

if TYPE_CHECKING:
    from models.runtime import DuplexModel

    from ..policy.duplex import DuplexTuning

POLICIES = ("vad-timeout", "vad-timeout-pipecat", "smart-turn", "duplex", "duplex-words")
WORDS_DELAY = 0.1  # seconds from a speech end to its transcript (ASR time on two cores, measured 40-100 ms)
BOT_ACTIVE_RMS = 10 ** (-50 / 20)
BOT_HANGOVER = 0.4  # seconds: the bot's pauses between sentences still count as bot speech


@dataclass
class Streams:
    """Per-sample per-chunk inputs: caller VAD prob, bot speaking flag, caller RMS, duplex heads."""
    vad: list[np.ndarray]
    bot_speaking: list[np.ndarray]
    rms: list[np.ndarray]
    duplex: list[np.ndarray] | None
    providers: dict[str, list[str]]
    seconds: float
    bot_rms: list[np.ndarray]  # RMS of the bot channel per chunk (what an echo follows)


def bot_activity(rms: np.ndarray) -> np.ndarray:
    """Whether the bot is speaking in each chunk, from the bot channel's per-chunk RMS (with a hangover)."""
    n = rms.size
    active = rms > BOT_ACTIVE_RMS
    hang = int(round(BOT_HANGOVER / CHUNK_SECONDS))
    out = active.copy()
    last = -10 ** 9
    for i in range(n):
        if active[i]:
            last = i
        elif i - last <= hang:
            out[i] = True
    return out


def compute_streams(samples: list[Sample], duplex: bool = True, duplex_path: str | None = None,
                    progress: bool = True) -> Streams:
    from tqdm import tqdm

    from ..engine.vad import SileroVad
    t0 = time.perf_counter()
    vad = SileroVad()
    providers = {"vad": vad.providers}
    model: DuplexModel | None = None
    if duplex:
        from models.runtime import DuplexModel
        model = DuplexModel(duplex_path)
        providers["duplex"] = model.providers
    lens = [s.audio.shape[1] // CHUNK_SAMPLES for s in samples]
    vads = [np.zeros(n, np.float32) for n in lens]
    heads = [np.zeros((n, 6), np.float32) for n in lens] if model else None
    ids = [f"{i}:{s.name}" for i, s in enumerate(samples)]
    for t in tqdm(range(max(lens)), desc="streaming models", disable=not progress, unit="chunk"):
        live = [i for i, n in enumerate(lens) if t < n]
        a, b = t * CHUNK_SAMPLES, (t + 1) * CHUNK_SAMPLES
        x = np.stack([samples[i].audio[:, a:b] for i in live])
        p = vad.run([ids[i] for i in live], x[:, 0])
        for k, i in enumerate(live):
            vads[i][t] = p[k, 0]
        if model is not None and heads is not None:
            y = model.run([ids[i] for i in live], x)
            for k, i in enumerate(live):
                heads[i][t] = y[k]
    for sid in ids:
        vad.drop(sid)
        if model is not None:
            model.drop(sid)
    rms, bot_rms = [], []
    for s, n in zip(samples, lens):
        c = s.audio[:, : n * CHUNK_SAMPLES].reshape(2, n, CHUNK_SAMPLES)
        rms.append(np.sqrt(np.mean(c[0] ** 2, axis=1)))
        bot_rms.append(np.sqrt(np.mean(c[1] ** 2, axis=1)))
    return Streams(vads, [bot_activity(r) for r in bot_rms], rms, heads, providers,
                   time.perf_counter() - t0, bot_rms)


class MemoWords:
    """Transcripts (text, decoder end-of-sentence probability, the voice's p(continue)) of caller
    audio spans, cached by (sample, span): threshold sweeps replay the same pauses without new ASR
    calls."""

    def __init__(self) -> None:
        from ..services.asr import WhisperAsr
        self.asr = WhisperAsr()
        self.cache: dict[tuple[str, int, int], tuple[str, float | None, float | None, float]] = {}
        self.seconds = 0.0

    def __call__(self, sample: Sample, t0: float, t1: float) -> tuple[str, float | None, float | None, float]:
        a, b = max(0, int(t0 * 16000)), int(t1 * 16000)
        k = (sample.name, a, b)
        if k not in self.cache:
            start = time.perf_counter()
            tr = self.asr.transcribe_detailed_sync(sample.audio[0, a:b])
            self.seconds += time.perf_counter() - start
            self.cache[k] = (tr.text, tr.p_final, tr.p_continue, tr.score)
        return self.cache[k]

    def close(self) -> None:
        self.asr.close()


def replay(policy: TurnPolicy, sample: Sample, st: Streams, i: int, words: MemoWords | None = None
           ) -> tuple[list[float], list[float]]:
    """Feed one sample's observations to a policy -> (end_of_turn times, interrupt times). With
    `words`, every speech end over a silent bot is transcribed (the caller's turn so far) and the
    evidence handed to the policy WORDS_DELAY later, as the engine does; so is caller speech over
    the bot when the policy asks for it (`transcribe_overlap`)."""
    from ..policy.completeness import evidence
    from ..policy.duplex import model_output
    from .smart_turn import SmartTurnPolicy
    policy.reset()
    feed = policy.feed_audio if isinstance(policy, SmartTurnPolicy) else None  # the one policy that hears audio
    eots: list[float] = []
    stops: list[float] = []
    vad, bot, rms, bot_rms = st.vad[i], st.bot_speaking[i], st.rms[i], st.bot_rms[i]
    heads = st.duplex[i] if (policy.needs_model and st.duplex is not None) else None
    utt_start: float | None = None
    due: list[tuple[float, str, float, float]] = []  # (when, "pause" | "overlap", end, start)

    def take(ds: list[Decision]) -> None:
        nonlocal utt_start
        for d in ds:
            if d.kind == "end_of_turn":
                eots.append(d.t)
                utt_start = None
            elif d.kind == "interrupt":
                stops.append(d.t)
                utt_start = d.onset
            elif d.kind == "speech_start" and utt_start is None:
                utt_start = d.onset
            elif d.kind == "speech_end" and words is not None and utt_start is not None and not bot[t]:
                due.append((d.t + WORDS_DELAY, "pause", d.t, utt_start))
            elif d.kind == "transcribe_overlap" and words is not None:
                due.append((d.t + WORDS_DELAY, "overlap", d.t, d.onset))

    for t in range(vad.size):
        now = (t + 1) * CHUNK_SECONDS
        while words is not None and due and due[0][0] <= now + 1e-9:
            when, what, end, start = due.pop(0)
            if what == "pause":
                text, p_final, p_continue, score = words(sample, start - PRE_ROLL, end + POST_ROLL)
                take(policy.on_words(evidence(text, p_final, end, when, p_continue, score=score)))
            else:  # words over the bot, as the engine transcribes them (no post-roll: it is live)
                text, *_ = words(sample, start - PRE_ROLL, end)
                take(policy.on_transcript(text, start, when))
        if feed is not None:
            feed(now, sample.audio[0, t * CHUNK_SAMPLES:(t + 1) * CHUNK_SAMPLES])
        obs = Observation(t=now, vad=float(vad[t]), bot_speaking=bool(bot[t]), rms=float(rms[t]),
                          bot_rms=float(bot_rms[t]), model=model_output(heads[t]) if heads is not None else None)
        take(policy.step(obs))
    return eots, stops


class MemoAnalyzer:
    """Smart Turn calls cached by (sample, segment end, segment length): threshold sweeps reuse them."""

    def __init__(self) -> None:
        from .smart_turn import SmartTurnModel
        self.model = SmartTurnModel()
        self.cache: dict[tuple[str, int, float], float] = {}
        self.key = ""
        self.seconds = 0.0

    def __call__(self, audio: np.ndarray) -> float:
        k = (self.key, audio.size, float(audio[-64:].sum()) if audio.size else 0.0)
        if k not in self.cache:
            t0 = time.perf_counter()
            self.cache[k] = self.model(audio)
            self.seconds += time.perf_counter() - t0
        return self.cache[k]


def make_policy(name: str, knob: float | None, base: PolicySettings, memo: MemoAnalyzer | None,
                tuning: DuplexTuning | None = None) -> TurnPolicy:
    """A policy at its default operating point, or with its sweep knob set (0..1 scale)."""
    from ..policy.baseline import VadTimeoutPolicy
    from ..policy.duplex import DuplexPolicy, DuplexTuning
    if name == "vad-timeout":
        s = replace(base, end_of_turn_silence=0.5, min_interruption_speech=0.5)
        if knob is not None:
            s = replace(s, end_of_turn_silence=0.1 + 1.5 * knob, min_interruption_speech=0.05 + 0.95 * knob)
        return VadTimeoutPolicy(s)
    if name == "vad-timeout-pipecat":
        s = replace(base, end_of_turn_silence=0.8, min_interruption_speech=0.2)
        if knob is not None:
            s = replace(s, end_of_turn_silence=0.1 + 1.5 * knob, min_interruption_speech=0.05 + 0.95 * knob)
        return VadTimeoutPolicy(s)
    if name == "smart-turn":
        from .smart_turn import SmartTurnPolicy, SmartTurnSettings
        st = SmartTurnSettings()
        if knob is not None:
            st = replace(st, threshold=0.05 + 0.9 * knob, vad_start_secs=0.064 + 0.64 * knob)
        if memo is None:
            raise ValueError("the smart-turn policy needs its analyzer (a MemoAnalyzer)")
        return SmartTurnPolicy(memo, st, base)
    if name in ("duplex", "duplex-words"):
        from ..policy.fusion import FusionSettings
        s = base
        fusion = FusionSettings() if name == "duplex-words" else None
        if knob is not None:
            s = replace(s, eot_threshold=0.05 + 0.9 * knob, interrupt_threshold=0.05 + 0.9 * knob)
            if fusion is not None:  # the words' side of the trade: how complete is complete
                fusion = replace(fusion, complete=0.3 + 0.65 * knob, incomplete=0.05 + 0.4 * knob)
        return DuplexPolicy(s, tuning or DuplexTuning(), fusion)
    raise ValueError(f"unknown policy {name!r} (choose from {', '.join(POLICIES)})")


def run_policy(name: str, samples: list[Sample], st: Streams, base: PolicySettings, memo: MemoAnalyzer | None,
               knob: float | None = None, keep_times: bool = False, tuning: DuplexTuning | None = None,
               words: MemoWords | None = None) -> dict[str, Any]:
    total = Scores()
    times: dict[str, dict[str, list[float]]] = {}
    for i, s in enumerate(samples):
        if memo is not None:
            memo.key = s.name
        pol = make_policy(name, knob, base, memo, tuning)
        eots, stops = replay(pol, s, st, i, words if name == "duplex-words" else None)
        total.add(score(s.labels, eots, stops, s.duration))
        if keep_times:
            times[s.name] = {"eot": eots, "interrupt": stops}
    out = summary(total)
    out["eot_latencies"] = [round(x, 3) for x in total.eot_latencies]
    out["stop_latencies"] = [round(x, 3) for x in total.stop_latencies]
    if keep_times:
        out["decisions"] = times
    return out


def evaluate(samples: list[Sample], policies: list[str], base: PolicySettings, curves: bool = True,
             duplex_path: str | None = None, progress: bool = True,
             tuning: DuplexTuning | None = None) -> dict[str, Any]:
    from tqdm import tqdm
    st = compute_streams(samples, any(p.startswith("duplex") for p in policies), duplex_path, progress)
    memo = MemoAnalyzer() if "smart-turn" in policies else None
    words = MemoWords() if "duplex-words" in policies else None
    results: dict[str, Any] = {"policies": {}, "providers": st.providers, "stream_seconds": round(st.seconds, 2)}
    knobs = np.linspace(0.0, 1.0, 11) if curves else np.zeros(0)
    for name in policies:
        t0 = time.perf_counter()
        r = run_policy(name, samples, st, base, memo, tuning=tuning, words=words)
        if len(knobs):
            r["curve"] = []
            # each Smart Turn threshold changes later segments (fresh model calls): a coarser sweep
            ks = knobs[::2] if name == "smart-turn" else knobs
            for k in tqdm(ks, desc=f"{name} sweep", disable=not progress):
                c = run_policy(name, samples, st, base, memo, knob=float(k), tuning=tuning, words=words)
                r["curve"].append({"knob": round(float(k), 3), **{m: c[m] for m in (
                    "eot_recall", "eot_fp_rate", "eot_latency_p50", "interruption_recall", "false_stop_rate",
                    "stop_latency_p50")}})
        r["seconds"] = round(time.perf_counter() - t0, 2)
        results["policies"][name] = r
    if words is not None:
        results["asr_calls"] = len(words.cache)
        results["asr_seconds"] = round(words.seconds, 2)
        words.close()
    if memo is not None:
        results["smart_turn_calls"] = len(memo.cache)
        results["smart_turn_seconds"] = round(memo.seconds, 2)
    return results


COLUMNS = [("eot_recall", "EOT rec"), ("eot_fp_rate", "FP/hold"), ("eot_latency_p10", "lat p10"),
           ("eot_latency_p50", "lat p50"), ("eot_latency_p90", "lat p90"), ("interruption_recall", "INT rec"),
           ("false_stop_rate", "false stop"), ("stop_latency_p50", "stop p50"), ("stop_latency_p90", "stop p90")]


def table(results: dict[str, Any]) -> str:
    head = f"{'policy':<22}" + "".join(f"{c:>11}" for _, c in COLUMNS)
    lines = [head, "-" * len(head)]
    for name, r in results["policies"].items():
        cells = "".join(f"{'-' if r[k] is None else format(r[k], '.3f'):>11}" for k, _ in COLUMNS)
        lines.append(f"{name:<22}{cells}")
    return "\n".join(lines)
