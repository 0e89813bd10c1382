"""A small fake of the engine contract (Runtime.calls / CallSession / state) for the web tests,
so the transport, routes and pages are tested without models. It behaves like a very simple bot:
energy VAD on the caller's audio, and after a caller turn (speech then 0.4 s of silence) it answers
with 1.5 s of a tone (440 Hz, or 660 Hz when a whisper asked for something else)."""
from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.audio import AudioFrame, Resampler
from bot.engine import events as ev
from bot.engine.admission import AdmissionController
from bot.engine.port import Hangup, Transport
from bot.routes.web_runtime import WebSettings
from bot.services.responder import AgentScript, ScriptedAgent
from bot.supervisor.auth import SupervisorSettings
from bot.transports.webrtc import WebRTCSettings

if TYPE_CHECKING:
    from bot.routes.web_runtime import WebRuntime


class FakeBotSource:
    def __init__(self) -> None:
        self.remaining = 0.0
        self.freq = 440.0
        self.phase = 0.0
        self.silenced = False
        self.read_samples = 0

    def play(self, seconds: float, freq: float) -> None:
        self.remaining, self.freq = seconds, freq

    def speaking(self) -> bool:
        return self.remaining > 0 and not self.silenced

    def read(self, samples: int, sample_rate: int) -> AudioFrame:
        self.read_samples += samples
        if not self.speaking():
            return AudioFrame.silence(sample_rate, samples)
        t = np.arange(samples) / sample_rate
        x = 0.3 * np.sin(2 * math.pi * self.freq * t + self.phase)
        self.phase += 2 * math.pi * self.freq * samples / sample_rate
        self.remaining -= samples / sample_rate
        return AudioFrame.from_float(x, sample_rate)

    def bursts_play_at_once(self) -> None:
        pass

    def confirm_played(self, samples_played: int) -> None:
        pass

    def is_speaking(self) -> bool:
        return self.speaking()


@dataclass
class FakeTakeover:
    supervisor: str
    frames: int = 0
    peak: int = 0
    released: bool = False

    def push(self, frame: AudioFrame) -> None:
        self.frames += 1
        if frame.samples:
            self.peak = max(self.peak, int(np.abs(frame.pcm.astype(np.int32)).max()))

    def release(self) -> None:
        self.released = True


class FakeSession:
    def __init__(self, transport: Any, manager: "FakeCallManager") -> None:
        self.transport = transport
        self.info = transport.info
        self.manager = manager
        self.responder = ScriptedAgent(AgentScript.load())  # reviews whispers, as the real session's does
        self.source = FakeBotSource()
        self.subscribers: list[asyncio.Queue] = []
        self.taps: list = []
        self.whispers: list[tuple[str, str]] = []
        self.takeover: FakeTakeover | None = None
        self.hand_backs = 0
        self.t = 0.0
        self.turn = 0
        self._resampler: Resampler | None = None

    # ---- contract -----------------------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(256)
        self.subscribers.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        if q in self.subscribers:
            self.subscribers.remove(q)

    def add_audio_tap(self, cb: Any) -> Any:
        self.taps.append(cb)

        def remove() -> None:
            if cb in self.taps:
                self.taps.remove(cb)
        return remove

    def whisper(self, text: str, supervisor: str) -> None:
        self.whispers.append((text, supervisor))

    def take_over(self, supervisor: str) -> FakeTakeover:
        self.takeover = FakeTakeover(supervisor)
        self.source.silenced = True
        return self.takeover

    def hand_back(self) -> None:
        self.hand_backs += 1
        if self.takeover:
            self.takeover.release()
        self.takeover = None
        self.source.silenced = False

    async def hangup(self, reason: str) -> None:
        await self.transport.close(reason)

    # ---- fake engine --------------------------------------------------------------------------
    def emit(self, cls: Any, **kw: Any) -> None:
        e = cls(call_id=self.info.call_id, t=self.t, **kw)
        for q in list(self.subscribers):
            if q.full():
                q.get_nowait()
            q.put_nowait(e)

    async def run(self) -> None:
        self.transport.start_output(self.source)
        self.emit(ev.CallStarted, transport=self.info.transport, caller=self.info.caller, tenant=self.info.tenant)
        speech = silence = 0.0
        in_turn = False
        reason = "remote"
        while True:
            item = await self.transport.receive()
            if isinstance(item, Hangup):
                reason = item.reason
                break
            if not isinstance(item, AudioFrame):
                continue
            d = item.duration
            self.t += d
            rms = float(np.sqrt(np.mean(item.pcm.astype(np.float64) ** 2))) if item.samples else 0.0
            self._tap(item)
            if rms > 300:
                if not in_turn and speech == 0:
                    self.emit(ev.CallerSpeechStart, confidence=0.9, during_bot_speech=self.source.speaking())
                speech += d
                silence = 0.0
                in_turn = speech > 0.2
            else:
                silence += d
                if in_turn and silence >= 0.4:
                    self._answer(speech)
                    in_turn, speech = False, 0.0
                elif not in_turn:
                    speech = 0.0
        self.emit(ev.CallEnded, reason=reason)

    def _answer(self, speech: float) -> None:
        self.emit(ev.CallerSpeechEnd, speech_started=self.t - 0.4 - speech)
        self.emit(ev.EndOfTurn, confidence=0.8, silence=0.4, policy="fake")
        self.emit(ev.TranscriptFinal, text="what are your opening hours", speaker="caller")
        self.turn += 1
        if self.whispers:
            text, freq = f"Special offer: {self.whispers[-1][0]}", 660.0
        else:
            text, freq = "We are open from nine to five.", 440.0
        self.emit(ev.BotSpeechStart, text=text, turn=self.turn)
        self.source.play(1.5, freq)

    def _tap(self, frame: AudioFrame) -> None:
        if not self.taps:
            return
        if self._resampler is None or self._resampler.src_rate != frame.sample_rate:
            self._resampler = Resampler(frame.sample_rate, 16000)
        caller = AudioFrame(self._resampler.process(frame.pcm), 16000)
        bot = AudioFrame.from_float(0.3 * np.sin(2 * math.pi * self.source.freq * np.arange(caller.samples) / 16000)
                                    if self.source.speaking() else np.zeros(caller.samples), 16000)
        for cb in list(self.taps):
            cb(caller, bot)


class FakeCallManager:
    def __init__(self) -> None:
        self.sessions: dict[str, FakeSession] = {}
        self.finished: list[FakeSession] = []

    async def run(self, transport: Transport) -> None:
        s = FakeSession(transport, self)
        self.sessions[transport.info.call_id] = s
        try:
            await s.run()
        finally:
            self.sessions.pop(transport.info.call_id, None)
            self.finished.append(s)

    def get(self, call_id: str) -> FakeSession | None:
        return self.sessions.get(call_id)

    def live(self) -> list[Any]:
        return list(self.sessions.values())


@dataclass
class FakeState:
    calls: FakeCallManager
    audits: list[dict] = field(default_factory=list)

    async def live_calls(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return [{"call_id": s.info.call_id, "tenant": s.info.tenant, "transport": s.info.transport,
                 "caller": s.info.caller, "state": "live", "worker": "w1"}
                for s in self.calls.sessions.values() if tenant is None or s.info.tenant == tenant]

    def audit(self, *, tenant: str, actor: str, action: str, call_id: str = "", detail: str = "") -> str:
        self.audits.append({"tenant": tenant, "actor": actor, "action": action, "call_id": call_id, "detail": detail})
        return str(len(self.audits))


@dataclass(frozen=True)
class FakeSettings:
    """The settings the browser and console routes read (`bot.routes.web_runtime.WebSettings`)."""
    webrtc: WebRTCSettings = field(default_factory=WebRTCSettings)
    supervisor: SupervisorSettings = field(default_factory=SupervisorSettings)


class FakeRuntime:
    """Satisfies `bot.routes.web_runtime.WebRuntime`, the routes' view of the runtime. `settings`:
    anything with `webrtc` and `supervisor` (default: both at their defaults)."""

    def __init__(self, settings: WebSettings | None = None) -> None:
        self.settings: WebSettings = settings if settings is not None else FakeSettings()
        self.calls = FakeCallManager()
        self.state = FakeState(self.calls)
        self.admission: AdmissionController | None = None  # a test may give it one


if TYPE_CHECKING:
    def _fake_is_a_web_runtime(rt: FakeRuntime) -> WebRuntime:
        return rt  # `mypy tests/web/fakes.py` holds the fake to the routes' contract
