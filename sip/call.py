"""One live call as the application sees it: caller audio and DTMF in, bot audio pulled out.

The call reaches its owner (`SipServer`) only through `CallOwner`; the owner and its media clock
drive the call through the methods under "owner side". What the caller sends is handed, as it
arrives, to the `CallSink` the application gives the call (`set_sink`): the call keeps no queue of
its own, so the application's inbox (the bot's `InboundMailbox`) holds the one bound and drop rule.
Until a sink is set, caller audio is dropped (nobody listens yet; `unheard_frames` counts it) while
DTMF is held and handed over first; the hang-up reaches a sink set after it too."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from .media import FRAME, DtmfDigit, RtpSession

if TYPE_CHECKING:
    from .media_clock import RtpPair


@dataclass(frozen=True)
class AudioChunk:
    pcm: np.ndarray      # int16, 8 kHz, 160 samples
    timestamp: float     # seconds of call time at the first sample


@dataclass(frozen=True)
class CallHangup:
    reason: str


CallItem = AudioChunk | DtmfDigit | CallHangup
CallSink = Callable[[CallItem], None]
"""Takes each item the caller sends, in order, as it arrives (called from the media clock and the
signalling edge, on the event loop: it must not block)."""


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
        self._sink: CallSink | None = None
        self._held: list[DtmfDigit] = []   # DTMF that arrived before the sink
        self._frames = 0
        self._output: Callable[[int], np.ndarray | None] | None = None
        self._transfer: asyncio.Future[bool] | None = None
        self.unheard_frames = 0   # caller audio that arrived before the application set a sink

    def attach(self, session: RtpSession) -> None:
        self.session = session

    # -- application side --------------------------------------------------------------------------
    def set_sink(self, sink: CallSink) -> None:
        """Where the caller's audio, DTMF and the hang-up go from now on (DTMF that came earlier,
        and the hang-up if the call already ended, are handed to it at once)."""
        self._sink = sink
        held, self._held = self._held, []
        for digit in held:
            sink(digit)
        if self.ended.is_set():
            sink(CallHangup(self.end_reason))

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
        chunk = AudioChunk(pcm, self._frames * FRAME / 8000)
        self._frames += 1
        if self._sink is None:
            self.unheard_frames += 1
        else:
            self._sink(chunk)

    def deliver_dtmf(self, digit: DtmfDigit) -> None:
        if self._sink is None:
            self._held.append(digit)
        else:
            self._sink(digit)

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
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.ended.set()
        if self._sink is not None:
            self._sink(CallHangup(reason))
        if self._transfer is not None and not self._transfer.done():
            # the peer hung up on us after a REFER: most transferees do that once the transfer worked
            self._transfer.set_result(reason == "remote_bye")

    def transfer_done(self, ok: bool, detail: str) -> None:
        """The transferee's verdict on our REFER."""
        if self._transfer is not None and not self._transfer.done():
            self._transfer.set_result(ok)
