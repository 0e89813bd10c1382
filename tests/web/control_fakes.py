"""Fakes for the supervisor controls and history tests: calls with the public methods the controls
use (say, bot_speaking, emit of real events, update_policy), a transport that can transfer, and
a runtime holding the real state store (embedded Valkey) so policy and history are the real ones."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

from bot.engine import events as ev
from bot.engine.port import CallInfo
from bot.policy.base import PolicySettings
from bot.state.settings import StateSettings
from bot.state.store import CallStore
from bot.supervisor import SupervisorSettings
from bot.transports.webrtc import WebRTCSettings

TOKENS = (("acme", "tokA-secret"), ("globex", "tokB-secret"))
A = {"Authorization": "Bearer tokA-secret", "X-Supervisor-Name": "Alice"}
B = {"Authorization": "Bearer tokB-secret", "X-Supervisor-Name": "Bob"}


@dataclass
class FakeTransport:
    info: CallInfo
    transfers: list[str] = field(default_factory=list)
    can_transfer: bool = True

    async def transfer(self, target: str) -> bool:
        self.transfers.append(target)
        return self.can_transfer


class ControlledCall:
    def __init__(self, call_id: str, tenant: str, transport: str = "sip") -> None:
        self.info = CallInfo(call_id=call_id, transport=transport, caller="+15550100", tenant=tenant)
        self.transport = FakeTransport(self.info)
        self.events: list[ev.Event] = []
        self.said: list[str] = []
        self.taken_over_by: str | None = None
        self.policies: list[PolicySettings] = []
        self.taps: list = []
        self._subscribers: list[asyncio.Queue] = []
        self.now = 1.5
        self.bot_speaking = False

    def emit(self, event: ev.Event) -> None:
        self.events.append(event)
        for q in self._subscribers:
            q.put_nowait(event)

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue()
        self._subscribers.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        if q in self._subscribers:
            self._subscribers.remove(q)

    def say(self, text: str) -> asyncio.Task:
        self.said.append(text)

        async def queued() -> None:
            return None
        return asyncio.ensure_future(queued())

    def take_over(self, supervisor: str) -> object:
        self.taken_over_by = supervisor
        return object()

    def hand_back(self) -> None:
        self.taken_over_by = None

    def update_policy(self, settings: PolicySettings) -> None:
        self.policies.append(settings)

    def add_audio_tap(self, cb):
        self.taps.append(cb)
        return lambda: self.taps.remove(cb) if cb in self.taps else None


class Calls:
    def __init__(self) -> None:
        self.sessions: dict[str, ControlledCall] = {}

    def get(self, call_id: str) -> ControlledCall | None:
        return self.sessions.get(call_id)

    def live(self) -> list[ControlledCall]:
        return list(self.sessions.values())


async def open_runtime(tmp_prefix: str) -> SimpleNamespace:
    store = await CallStore.open(StateSettings(prefix=tmp_prefix, worker_id="w1"))
    settings = SimpleNamespace(supervisor=SupervisorSettings(tokens=TOKENS), webrtc=WebRTCSettings())
    return SimpleNamespace(settings=settings, calls=Calls(), state=store)
