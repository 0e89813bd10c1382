"""Typed engine events. Every event carries the call, the stream time `t` (seconds of caller
audio since the call started) and a monotonic wall-clock stamp `mono`. `to_dict()` is the wire
form used for events.jsonl, Redis streams and the web console."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class Event:
    type: ClassVar[str] = "event"
    call_id: str
    t: float
    mono: float = field(default_factory=time.monotonic)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["type"] = self.type
        d["t"] = round(self.t, 4)
        d["mono"] = round(self.mono, 6)
        return d


@dataclass(frozen=True, kw_only=True)
class CallStarted(Event):
    type: ClassVar[str] = "call_started"
    transport: str
    caller: str = ""
    callee: str = ""
    tenant: str = "default"


@dataclass(frozen=True, kw_only=True)
class CallEnded(Event):
    type: ClassVar[str] = "call_ended"
    reason: str


@dataclass(frozen=True, kw_only=True)
class CallerSpeechStart(Event):
    type: ClassVar[str] = "caller_speech_start"
    confidence: float
    during_bot_speech: bool = False


@dataclass(frozen=True, kw_only=True)
class CallerSpeechEnd(Event):
    type: ClassVar[str] = "caller_speech_end"
    speech_started: float


@dataclass(frozen=True, kw_only=True)
class TranscriptPartial(Event):
    type: ClassVar[str] = "transcript_partial"
    text: str
    complete: float | None = None  # at a pause: how complete the words look (bot/policy/completeness.py)
    p_continue: float | None = None  # ... and the voice's p(continue) there (bot/services/prosody.py)
    score: float | None = None  # ... and the recogniser's mean token log-prob (how sure it was of the words)

    def __post_init__(self) -> None:  # to the trace's precision: 3 places
        for k in ("complete", "p_continue", "score"):
            v = getattr(self, k)
            if v is not None:
                object.__setattr__(self, k, round(v, 3))


@dataclass(frozen=True, kw_only=True)
class TranscriptFinal(Event):
    type: ClassVar[str] = "transcript_final"
    text: str
    speaker: str = "caller"


@dataclass(frozen=True, kw_only=True)
class EndOfTurn(Event):
    """The policy decided the caller has finished: the bot takes the turn."""
    type: ClassVar[str] = "end_of_turn"
    confidence: float
    silence: float  # seconds of caller silence when the decision was taken
    policy: str
    reason: str = ""  # what decided it ("words 0.92 “… the store?”: complete", "p(eot)=0.97", a fallback)


@dataclass(frozen=True, kw_only=True)
class Hold(Event):
    """The caller paused but the policy expects them to go on."""
    type: ClassVar[str] = "hold"
    confidence: float
    policy: str


@dataclass(frozen=True, kw_only=True)
class BargeIn(Event):
    """A real interruption: bot audio stops now."""
    type: ClassVar[str] = "barge_in"
    confidence: float
    reason: str
    policy: str
    onset: float  # stream time the caller's overlapping speech started


@dataclass(frozen=True, kw_only=True)
class Backchannel(Event):
    """Caller sound over bot speech judged a backchannel or noise: the bot keeps talking."""
    type: ClassVar[str] = "backchannel"
    confidence: float
    text: str  # what the caller said, when known (never a probability label)
    policy: str
    reason: str = ""  # why the policy judged it so ("p(backchannel)=0.70", a notice the tenant protects)


@dataclass(frozen=True, kw_only=True)
class BackchannelOpportunity(Event):
    type: ClassVar[str] = "backchannel_opportunity"
    confidence: float


@dataclass(frozen=True, kw_only=True)
class FalseBargeIn(Event):
    """A barge-in after which no words followed: the bot resumes."""
    type: ClassVar[str] = "false_barge_in"
    resumed_text: str


@dataclass(frozen=True, kw_only=True)
class BotSpeechStart(Event):
    type: ClassVar[str] = "bot_speech_start"
    text: str
    turn: int


@dataclass(frozen=True, kw_only=True)
class BotSpeechStop(Event):
    type: ClassVar[str] = "bot_speech_stop"
    reason: str  # "done" | "barge_in" | "takeover" | "hangup"
    turn: int


@dataclass(frozen=True, kw_only=True)
class BotTruncated(Event):
    """What the caller heard of an interrupted bot turn, and what was dropped."""
    type: ClassVar[str] = "bot_truncated"
    heard: str
    unheard: str
    turn: int


@dataclass(frozen=True, kw_only=True)
class DtmfReceived(Event):
    type: ClassVar[str] = "dtmf"
    digit: str


@dataclass(frozen=True, kw_only=True)
class Action(Event):
    """A responder action carried out (transfer, hang-up)."""
    type: ClassVar[str] = "action"
    name: str
    target: str = ""
    ok: bool = True


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(Event):
    type: ClassVar[str] = "error"
    where: str
    message: str
    retryable: bool = False


@dataclass(frozen=True, kw_only=True)
class Speculation(Event):
    """A response started on a provisional transcript at a pause, before the end of turn.
    outcome: "started"; then "used" (the end of turn came on this transcript and its answer
    played) or "wasted" (the caller went on, or the final words differed); `id` ties them."""
    type: ClassVar[str] = "speculation"
    id: int
    outcome: str
    text: str = ""
    reason: str = ""  # why it was wasted ("caller went on", "transcript changed")
    ready: float | None = None  # seconds of head start it had when used (started -> end of turn)


@dataclass(frozen=True, kw_only=True)
class ToolStep(Event):
    """A tool call, its result, a refusal or a spoken filler (see `ToolNote`)."""
    type: ClassVar[str] = "tool"
    phase: str
    name: str
    arguments: str = ""
    result: str = ""
    ok: bool = True
    elapsed: float = 0.0
    speculative: bool = False


@dataclass(frozen=True, kw_only=True)
class IntentDetected(Event):
    """An intent the agent declares, heard in the caller's words; `partial` while they still speak."""
    type: ClassVar[str] = "intent"
    intent: str
    confidence: float
    text: str
    partial: bool = True


@dataclass(frozen=True, kw_only=True)
class TurnRevised(Event):
    """The caller cut the bot to correct it: the next answer continues from what was heard."""
    type: ClassVar[str] = "turn_revised"
    turn: int
    heard: str
    correction: str


@dataclass(frozen=True, kw_only=True)
class SupervisorControl(Event):
    """A supervisor changed how the call runs (bot/supervisor/controls.py). action: "takeover" |
    "handback" | "mute" | "unmute" | "hold" | "resume" | "transfer" | "policy". `notice` is what the
    caller is told (spoken by the bot, shown on the call page); who acted is in the audit trail."""
    type: ClassVar[str] = "supervisor"
    action: str
    notice: str = ""
    detail: str = ""
