"""The SIP/RTP transport: adapts one `sip.SipCall` to the engine's audio port.

Caller audio arrives as 20 ms PCM16 frames at 8 kHz from the jitter buffer; bot audio is pulled from
the engine's `BotAudioSource` by the SIP media clock every 20 ms (the RTP pace), so `clear()` has
nothing of ours to drop. `transfer()` is a blind REFER transfer (True once the transferee reports
2xx in its NOTIFY, or hangs up on us after accepting it)."""
from __future__ import annotations

import numpy as np

from sip import AudioChunk, CallHangup, DtmfDigit, SipCall

from ..audio.frame import AudioFrame
from ..engine.admission import AdmissionController
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


class SipTransport:
    reports_playback = False

    def __init__(self, call: SipCall, tenant: str = "default"):
        self.call = call
        self.info = CallInfo(call_id=call.call_id, transport="sip", caller=call.caller, callee=call.callee,
                             tenant=tenant, extra={"remote": f"{call.remote_addr[0]}:{call.remote_addr[1]}"})
        self.source: BotAudioSource | None = None
        self._hung_up: str | None = None

    async def receive(self) -> InboundItem:
        if self._hung_up is not None:
            return Hangup(self._hung_up)
        item = await self.call.receive()
        if isinstance(item, AudioChunk):
            return AudioFrame(item.pcm, RATE, item.timestamp)
        if isinstance(item, DtmfDigit):
            return Dtmf(item.digit, item.duration_ms)
        if isinstance(item, CallHangup):
            self._hung_up = "remote" if item.reason == "remote_bye" else item.reason
            return Hangup(self._hung_up)
        raise TypeError(f"unexpected item from the SIP call: {item!r}")

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
