"""The narrow audio port between a call's conversation engine and its transport.

Every transport (in-process simulator, Twilio Media Streams, SIP/RTP, WebRTC) implements
`Transport`. The engine never knows which one it talks to.

Caller side: `receive()` yields caller audio frames (any supported rate, any size) in order,
interleaved with `Dtmf` and ending with one `Hangup`. Every transport queues them in its
`inbox`, an `InboundMailbox` (engine/mailbox.py): one bound and one drop rule for every call path
(the oldest audio goes when the engine falls behind; DTMF and the hang-up never), counted in
`inbox.stats`. DTMF digits are `sip.dtmf.DIGITS`, the one alphabet.

Bot side: the engine hands the transport a `BotAudioSource`; the transport *pulls* frames from it at
its own real-time pace (RTP clock, Twilio pacing, WebRTC track; `sip.pacer.Pacer` holds the one
lateness rule) and at its `output_rate`, which the engine reads once to prepare its audio at that
rate. Pulling is what tells the engine what left the building. Transports that buffer downstream
(Twilio) also call `source.confirm_played(pos)` as playback marks return, so the engine knows
exactly what the caller heard. `clear()` must drop anything the transport itself buffered,
synchronously (it is called on barge-in and never waits behind audio).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Protocol, runtime_checkable

from ..audio.frame import AudioFrame

if TYPE_CHECKING:
    from .mailbox import InboundMailbox


# CallInfo.extra key: the call was placed to take a number of this many digits (a voice URL's
# ?expect_digits=8, bot/transports/twilio/webhook.py); its policy holds the caller's first turn for it
EXPECT_DIGITS = "expect_digits"


@dataclass(frozen=True)
class CallInfo:
    call_id: str
    transport: str
    caller: str = ""
    callee: str = ""
    tenant: str = "default"
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Dtmf:
    digit: str
    duration_ms: int = 0


@dataclass(frozen=True)
class Hangup:
    reason: str = "remote"


InboundItem = AudioFrame | Dtmf | Hangup


@runtime_checkable
class BotAudioSource(Protocol):
    def read(self, samples: int, sample_rate: int) -> AudioFrame:
        """Next `samples` of bot audio at `sample_rate` (silence-filled when the bot is quiet). Never blocks."""

    def confirm_played(self, samples_played: int) -> None:
        """Downstream playback reached `samples_played` (counted at the rate the transport reads)."""

    def is_speaking(self) -> bool:
        """True while bot speech is queued or being read."""

    def bursts_play_at_once(self) -> None:
        """The transport's peer is sent nothing while the bot is quiet and plays a new burst the
        moment it arrives, whatever was read ahead before it (Twilio): the echo reference then puts
        each burst at the caller's present, not after the silence read ahead of it."""


@runtime_checkable
class Transport(Protocol):
    info: CallInfo
    reports_playback: bool  # True when the transport calls confirm_played (Twilio marks)
    inbox: InboundMailbox  # caller items waiting for receive(); its stats count what was dropped

    @property
    def output_rate(self) -> int:
        """The sample rate the transport reads the BotAudioSource at (read-only for the engine)."""
        ...

    async def receive(self) -> InboundItem: ...

    def start_output(self, source: BotAudioSource) -> None: ...

    def clear(self) -> None: ...

    async def close(self, reason: str) -> None: ...

    async def transfer(self, target: str) -> bool:
        """Hand the call to a human (number or SIP URI). False when the transport cannot."""
