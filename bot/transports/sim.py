"""The in-process transport: a scripted caller (or a test) pushes caller frames and pulls bot frames.

Pushed items go through the same `InboundMailbox` as every other transport's. `wait_idle()`
returns once the engine has consumed every pushed item and is waiting for more, which lets the
simulator step the call deterministically (`--fast`) without sleeps."""
from __future__ import annotations

from ..audio.frame import AudioFrame
from ..engine.mailbox import InboundMailbox
from ..engine.port import BotAudioSource, CallInfo, Dtmf, Hangup, InboundItem


class SimTransport:
    reports_playback = False

    def __init__(self, info: CallInfo, rate: int = 16000):
        self.info = info
        self.output_rate = rate
        self.inbox = InboundMailbox()
        self.source: BotAudioSource | None = None
        self.clears = 0
        self.transfers: list[str] = []

    # -- caller side --------------------------------------------------------------------------
    def push(self, item: InboundItem) -> None:
        self.inbox.put(item)

    def push_audio(self, frame: AudioFrame) -> None:
        self.push(frame)

    def push_dtmf(self, digit: str) -> None:
        self.push(Dtmf(digit))

    def hangup(self, reason: str = "remote") -> None:
        self.push(Hangup(reason))

    async def wait_idle(self) -> None:
        await self.inbox.wait_idle()

    def read_bot(self, samples: int) -> AudioFrame:
        if self.source is None:
            return AudioFrame.silence(self.output_rate, samples)
        return self.source.read(samples, self.output_rate)

    # -- Transport ----------------------------------------------------------------------------
    async def receive(self) -> InboundItem:
        return await self.inbox.get()

    def start_output(self, source: BotAudioSource) -> None:
        self.source = source

    def clear(self) -> None:
        self.clears += 1

    async def close(self, reason: str) -> None:
        self.inbox.put(Hangup(reason))

    async def transfer(self, target: str) -> bool:
        self.transfers.append(target)
        return True
