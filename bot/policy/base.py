"""The turn-taking policy interface.

A policy is a sans-IO object. The engine feeds it one `Observation` per 32 ms chunk of caller
audio (16 kHz, 512 samples) and it returns `Decision`s. It never blocks and never does I/O: model
outputs (Silero VAD probability, the duplex model's heads) are computed by the batched inference
scheduler and handed in. A policy that wants words (the baseline's word rule for barge-in) returns a
`TRANSCRIBE_OVERLAP` decision; the engine runs ASR off the loop and calls `on_transcript` later.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from .completeness import WordEvidence

CHUNK_SAMPLES = 512
CHUNK_RATE = 16000
CHUNK_SECONDS = CHUNK_SAMPLES / CHUNK_RATE  # 0.032


class DecisionKind(StrEnum):
    """What a policy decided. A `StrEnum`: each member is its string value (`"end_of_turn"`), so
    logs, traces and JSON read as before and a member compares equal to its string."""
    SPEECH_START = "speech_start"  # caller started speaking (confidence = VAD prob)
    SPEECH_END = "speech_end"  # caller stopped speaking (may be a pause)
    END_OF_TURN = "end_of_turn"  # the caller has finished: bot speaks now
    HOLD = "hold"  # caller paused, expected to go on
    INTERRUPT = "interrupt"  # real interruption over bot speech: stop now
    BACKCHANNEL = "backchannel"  # caller sound over bot speech that is not an interruption
    BACKCHANNEL_OPPORTUNITY = "backchannel_opportunity"  # (duplex model) where a listener would say "mm-hmm"
    TRANSCRIBE_OVERLAP = "transcribe_overlap"  # run ASR on caller audio since `onset`, call on_transcript


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """The duplex model's per-chunk heads (probabilities in [0, 1])."""
    eot: float
    hold: float
    interrupt: float
    backchannel: float
    bc_opportunity: float = 0.0


@dataclass(frozen=True, slots=True)
class Observation:
    t: float  # stream time at the end of this chunk (seconds)
    vad: float  # Silero speech probability for the caller chunk
    bot_speaking: bool  # bot audio was playing during this chunk
    rms: float = 0.0  # caller chunk RMS (float audio, 0..1)
    model: ModelOutput | None = None  # set when the policy declares needs_model
    bot_rms: float = 0.0  # RMS of the bot audio the caller heard in this chunk (the echo's source)


@dataclass(frozen=True, slots=True)
class Decision:
    kind: DecisionKind
    t: float
    confidence: float = 1.0
    reason: str = ""
    onset: float = 0.0  # caller speech onset this decision refers to
    silence: float = 0.0  # seconds of silence behind an end_of_turn
    # a periodic TRANSCRIBE_OVERLAP: the engine may skip it while the call's previous overlap
    # transcription still runs (the one at the end of the overlap is never a recheck)
    recheck: bool = False


@dataclass(frozen=True)
class PolicySettings:
    """Thresholds a tenant's barge-in policy (Redis) can tune. Units: seconds, probabilities."""
    vad_threshold: float = 0.5
    vad_off_threshold: float = 0.35
    min_speech: float = 0.064  # speech shorter than this is ignored (clicks)
    end_of_turn_silence: float = 0.5  # baseline endpointing delay (LiveKit's min_endpointing_delay)
    # model policies: silence after which the turn ends whatever the model says, unless the model
    # reads the pause as a hold (p(hold) >= 0.5): then the caller gets up to max_hold_silence.
    # 0.75 s is the "balanced" end_of_turn preset; "accurate" waits 2 s (fewer takeovers in pauses
    # the model is unsure of, slower answers when it is unsure of a real end)
    max_end_of_turn_silence: float = 0.75
    max_hold_silence: float = 3.0
    min_interruption_speech: float = 0.5  # baseline: overlap this long always interrupts
    interruption_check_after: float = 0.128  # baseline: ask ASR for words after this much overlap
    # duplex thresholds are neutral-relative: 0.5 means the operating point the shipped model was tuned
    # to (its manifest's "recommended"); lower is quicker/more sensitive, higher is more careful
    eot_threshold: float = 0.5  # duplex: p(eot) to take the turn
    interrupt_threshold: float = 0.5  # duplex: p(interrupt) to stop
    backchannel_mode: Literal["ignore", "interrupt"] = "ignore"
    allow_overlap: bool = False  # bot may keep talking over any caller speech (consent notices)
    max_bot_monologue: float = 60.0  # seconds of continuous bot speech before the bot yields the turn


class TurnPolicy(Protocol):
    name: str
    needs_model: bool
    settings: PolicySettings

    def step(self, obs: Observation) -> list[Decision]: ...

    def on_transcript(self, text: str, onset: float, t: float) -> list[Decision]: ...

    def on_words(self, words: "WordEvidence") -> list[Decision]:
        """The transcript of the caller's turn at a pause, with its completeness (the engine
        transcribes at every pause); a policy may end the turn on it."""
        ...

    def expect_digits(self, n: int) -> None:
        """The bot asked for a number of `n` digits (0: none): the caller's next turn ends when that
        many are heard, and not before unless the caller stops for long (a policy that ends turns
        on silence alone may ignore it)."""
        ...

    def update_settings(self, settings: PolicySettings) -> None: ...

    def reset(self) -> None: ...
