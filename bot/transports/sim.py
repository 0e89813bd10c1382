"""The in-process transport: a scripted caller (or a test) pushes caller frames and pulls bot frames.

`wait_idle()` returns once the engine has consumed every pushed item and is waiting for more, which
lets the simulator step the call deterministically (`--fast`) without sleeps."""
from __future__ import annotations

import asyncio
from collections import deque

from ..audio.frame import AudioFrame
from ..engine.port import BotAudioSource, CallInfo, Dtmf, Hangup, InboundItem


class SimTransport:
    reports_playback = False

    def __init__(self, info: CallInfo, rate: int = 16000):
        self.info = info
        self.output_rate = rate
        self._inbound: deque[InboundItem] = deque()
        self._has_item = asyncio.Event()
        self._idle = asyncio.Event()
        self.source: BotAudioSource | None = None
        self.clears = 0
        self.transfers: list[str] = []
        self.closed: str | None = None

    # -- caller side --------------------------------------------------------------------------
    def push(self, item: InboundItem) -> None:
        self._inbound.append(item)
        self._idle.clear()
        self._has_item.set()

    def push_audio(self, frame: AudioFrame) -> None:
        self.push(frame)

    def push_dtmf(self, digit: str) -> None:
        self.push(Dtmf(digit))

    def hangup(self, reason: str = "remote") -> None:
        self.push(Hangup(reason))

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def read_bot(self, samples: int) -> AudioFrame:
        if self.source is None:
            return AudioFrame.silence(self.output_rate, samples)
        return self.source.read(samples, self.output_rate)

    # -- Transport ----------------------------------------------------------------------------
    async def receive(self) -> InboundItem:
        while not self._inbound:
            if self.closed is not None:
                return Hangup(self.closed)
            self._has_item.clear()
            self._idle.set()
            await self._has_item.wait()
        return self._inbound.popleft()

    def start_output(self, source: BotAudioSource) -> None:
        self.source = source

    def clear(self) -> None:
        self.clears += 1

    async def close(self, reason: str) -> None:
        self.closed = reason
        self._has_item.set()

    async def transfer(self, target: str) -> bool:
        self.transfers.append(target)
        return True
