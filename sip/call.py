"""One live call as the application sees it: caller audio and DTMF in, bot audio pulled out.

The call reaches its owner (`SipServer`) only through `CallOwner`; the owner and its media clock
drive the call through the methods under "owner side"."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from .media import FRAME, DtmfDigit, RtpSession

if TYPE_CHECKING:
    from .media_clock import RtpPair

MAX_QUEUED_FRAMES = 250   # 5 s of caller audio: beyond that the application is stuck; drop oldest


@dataclass(frozen=True)
class AudioChunk:
    pcm: np.ndarray      # int16, 8 kHz, 160 samples
    timestamp: float     # seconds of call time at the first sample


@dataclass(frozen=True)
class CallHangup:
    reason: str


class CallOwner(Protocol):
    """What a call asks of whoever owns its signalling."""

    def hangup(self, call: "SipCall") -> None: ...

    def transfer(self, call: "SipCall", target: str) -> None: ...


class SipCall:
    def __init__(self, owner: CallOwner, call_id: str, caller: str, callee: str,
                 remote_addr: tuple[str, int], rtp: tuple["RtpPair", int], inbound: bool):
        self.owner = owner
        self.call_id = call_id
        self.caller = caller
        self.callee = callee
        self.remote_addr = remote_addr
        self.rtp, self.rtp_port = rtp
        self.inbound = inbound
        self.session: RtpSession | None = None
        self.ended = asyncio.Event()
        self.end_reason = ""
        self._queue: asyncio.Queue = asyncio.Queue()
        self._frames = 0
        self._output: Callable[[int], np.ndarray | None] | None = None
        self._transfer: asyncio.Future | None = None
        self.dropped_frames = 0

    def attach(self, session: RtpSession) -> None:
        self.session = session

    # -- application side --------------------------------------------------------------------------
    async def receive(self) -> AudioChunk | DtmfDigit | CallHangup:
        return await self._queue.get()

    def set_output(self, pull: Callable[[int], np.ndarray | None] | None) -> None:
        """`pull(samples)` is called every 20 ms for 160 samples of 8 kHz bot audio (None: silence)."""
        self._output = pull

    def send_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        if self.session is None:
            raise ValueError("no media yet")
        self.session.send_dtmf(digit, duration_ms)

    def hangup(self) -> None:
        self.owner.hangup(self)

    async def transfer(self, target: str, timeout: float = 15.0) -> bool:
        """Blind transfer with REFER; True when the transferee reports success (NOTIFY 2xx)."""
        if self.ended.is_set():
            return False
        loop = asyncio.get_running_loop()
        self._transfer = loop.create_future()
        self.owner.transfer(self, target)
        try:
            return await asyncio.wait_for(asyncio.shield(self._transfer), timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            self._transfer = None

    # -- owner side (SipServer and its media clock) ------------------------------------------------
    def deliver_audio(self, pcm: np.ndarray) -> None:
        self._deliver(AudioChunk(pcm, self._frames * FRAME / 8000))
        self._frames += 1

    def deliver_dtmf(self, digit: DtmfDigit) -> None:
        self._deliver(digit)

    def _deliver(self, item: AudioChunk | DtmfDigit) -> None:
        if self._queue.qsize() >= MAX_QUEUED_FRAMES:
            try:
                self._queue.get_nowait()
                self.dropped_frames += 1
            except asyncio.QueueEmpty:
                pass
        self._queue.put_nowait(item)

    def next_output(self) -> np.ndarray | None:
        """The next 20 ms of bot audio, or None for silence."""
        if self._output is None:
            return None
        pcm = self._output(FRAME)
        if pcm is None or len(pcm) != FRAME:
            return None
        return pcm

    def mark_ended(self, reason: str) -> None:
        """Signalling is over: the application gets `CallHangup(reason)`."""
        self.end_reason = reason
        self.ended.set()
        self._queue.put_nowait(CallHangup(reason))
        if self._transfer is not None and not self._transfer.done():
            # the peer hung up on us after a REFER: most transferees do that once the transfer worked
            self._transfer.set_result(reason == "remote_bye")

    def transfer_done(self, ok: bool, detail: str) -> None:
        """The transferee's verdict on our REFER."""
        if self._transfer is not None and not self._transfer.done():
            self._transfer.set_result(ok)
