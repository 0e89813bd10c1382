"""The SIP/RTP transport: adapts one `sip.SipCall` to the engine's audio port.

Caller audio arrives as 20 ms PCM16 frames at 8 kHz from the jitter buffer; the call hands each item
straight to our sink, which puts it into the engine's `InboundMailbox` as it arrives, so the
mailbox's bound and drop rule (the same for every transport: audio drop-oldest, DTMF and the hang-up
never dropped) apply. Bot audio is pulled from
the engine's `BotAudioSource` by the SIP media clock every 20 ms (the RTP pace), so `clear()` has
nothing of ours to drop. `transfer()` is a blind REFER transfer (True once the transferee reports
2xx in its NOTIFY, or hangs up on us after accepting it)."""
from __future__ import annotations

import numpy as np

from sip import AudioChunk, CallItem, DtmfDigit, SipCall

from ..audio.frame import AudioFrame
from ..engine.admission import AdmissionController
from ..engine.mailbox import InboundMailbox
from ..engine.port import BotAudioSource, CallInfo, Dtmf, Hangup, InboundItem

RATE = 8000


class SipAdmission:
    """The process's one admission controller as the SIP core's `sip.ratelimit.CallAdmission`: the
    core asks it before it sends 100 Trying, and refused INVITEs get 503 with its Retry-After."""

    def __init__(self, controller: AdmissionController) -> None:
        self.controller = controller

    def admit(self, call_id: str, now: float) -> int | None:
        d = self.controller.admit(call_id, "sip", now)
        return None if d.admitted else d.retry_after

    def release(self, call_id: str) -> None:
        self.controller.release(call_id, "sip")


def _inbound(item: CallItem) -> InboundItem:
    if isinstance(item, AudioChunk):
        return AudioFrame(item.pcm, RATE, item.timestamp)
    if isinstance(item, DtmfDigit):
        return Dtmf(item.digit, item.duration_ms)
    return Hangup("remote" if item.reason == "remote_bye" else item.reason)


class SipTransport:
    reports_playback = False
    output_rate = RATE

    def __init__(self, call: SipCall, tenant: str = "default"):
        self.call = call
        self.info = CallInfo(call_id=call.call_id, transport="sip", caller=call.caller, callee=call.callee,
                             tenant=tenant, extra={"remote": f"{call.remote_addr[0]}:{call.remote_addr[1]}"})
        self.source: BotAudioSource | None = None
        self.inbox = InboundMailbox()
        call.set_sink(self._take)

    def _take(self, item: CallItem) -> None:
        """The call's sink: each caller item into the mailbox, as it arrives."""
        self.inbox.put(_inbound(item))

    async def receive(self) -> InboundItem:
        return await self.inbox.get()

    def start_output(self, source: BotAudioSource) -> None:
        self.source = source

        def pull(samples: int) -> np.ndarray:
            return source.read(samples, RATE).pcm
        self.call.set_output(pull)

    def clear(self) -> None:
        """Nothing is buffered on our side: the next 20 ms tick pulls whatever the engine has now."""

    async def close(self, reason: str) -> None:
        self.call.set_output(None)
        self.call.hangup()

    async def transfer(self, target: str) -> bool:
        if not target.startswith(("sip:", "sips:", "tel:")):
            target = f"sip:{target}@{self.call.remote_addr[0]}"
        return await self.call.transfer(target)
