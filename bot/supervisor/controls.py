"""Supervisor call controls: mute the bot, put the caller on hold, transfer, the tenant's barge-in
policy, and the notice the caller hears when a human takes over. Each is audited (who, when,
what; a policy change as old → new) and shown on the call's timeline as a `supervisor` event.

- Mute: the bot stops now and says nothing until unmuted; it still listens, transcribes and
  decides (the timeline keeps showing what it would have done).
- Hold: the bot says the hold notice, then nothing; resume says the resume notice and the bot
  answers again. Both use the session's take-over state with no supervisor audio (a silent
  take-over), so a barge-in or an answer can never break the silence; a real take-over replaces
  either, and neither can start while a supervisor speaks.
- Transfer: the transport's own (SIP REFER, Twilio REST); WebRTC cannot, and says so (409).
- Policy: `interruption_sensitivity` and `end_of_turn` of the supervisor's tenant, written to the
  policy store (validated, published): every live call of the tenant, on every worker, follows
  it within a second (`CallSession.update_policy` through `PolicyWatcher`).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Protocol, runtime_checkable

from ..engine.events import Action, Event, SupervisorControl
from ..engine.port import CallInfo, Transport
from ..state.policy import BargeInPolicy, PolicyError, validate_overrides
from ..state.policy_store import PolicyStore, Scope
from .auth import Supervisor

if TYPE_CHECKING:
    from .console import SupervisorConsole

log = logging.getLogger(__name__)

LIVE_FIELDS = ("interruption_sensitivity", "end_of_turn")  # what a supervisor may change live
MAX_TARGET = 256
NOTICE_TIMEOUT = 15.0  # seconds a notice may take to play before the control goes ahead anyway


@runtime_checkable
class ControlledCall(Protocol):
    """What the controls need of a call (CallSession's public methods)."""
    info: CallInfo
    transport: Transport

    @property
    def now(self) -> float: ...

    @property
    def bot_speaking(self) -> bool: ...

    @property
    def taken_over_by(self) -> str | None: ...

    def emit(self, event: Event) -> None: ...

    def say(self, text: str) -> asyncio.Task: ...

    def take_over(self, supervisor: str) -> Any: ...

    def hand_back(self) -> None: ...


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Mode:
    kind: str  # "mute" | "hold"
    supervisor: Supervisor


async def say_and_wait(call: ControlledCall, text: str, timeout: float = NOTICE_TIMEOUT) -> None:
    """Say `text` and wait until it has played (or was cut by the caller, or `timeout`)."""
    if not text:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        await asyncio.wait_for(asyncio.shield(call.say(text)), timeout)
    except (asyncio.TimeoutError, Exception):  # a TTS failure never blocks the control
        log.warning("controls: the notice for %s did not queue in time", call.info.call_id)
    while call.bot_speaking and loop.time() < deadline:
        await asyncio.sleep(0.02)


def _describe(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {old.get(k)} → {new[k]}" for k in LIVE_FIELDS if k in new)


class CallControls:
    def __init__(self, console: "SupervisorConsole") -> None:
        self.console = console
        self.modes: dict[str, Mode] = {}
        self._policies: PolicyStore | None = None

    # ---- helpers ------------------------------------------------------------------------------
    async def _call(self, sup: Supervisor, call_id: str, action: str) -> ControlledCall:
        session = await self.console.session_for(sup, call_id, action)
        if not isinstance(session, ControlledCall):
            raise ControlError(501, f"this call's engine cannot {action}")
        self.console.follow_call(session)  # a mute or hold ends with the call
        return session

    def _event(self, call: ControlledCall, action: str, notice: str = "", detail: str = "") -> None:
        try:
            call.emit(SupervisorControl(call_id=call.info.call_id, t=call.now, action=action, notice=notice,
                                        detail=detail))
        except Exception:
            log.exception("controls: emitting %s failed", action)

    def release(self, call_id: str) -> Mode | None:
        """A take-over replaces a mute or hold (the session's take-over state is re-used)."""
        return self.modes.pop(call_id, None)

    def state(self, call_id: str) -> dict[str, str]:
        m = self.modes.get(call_id)
        return {"mode": m.kind, "by": m.supervisor.actor} if m else {"mode": "", "by": ""}

    def _busy(self, call_id: str, want: str) -> None:
        tk = self.console.takeovers.get(call_id)
        if tk is not None:
            raise ControlError(409, f"taken over by {tk.supervisor.actor}: hand back first")
        m = self.modes.get(call_id)
        if m is not None and m.kind != want:
            raise ControlError(409, f"the call is {'muted' if m.kind == 'mute' else 'on hold'} "
                                    f"by {m.supervisor.actor}: end that first")

    # ---- mute, hold ---------------------------------------------------------------------------
    async def mute(self, sup: Supervisor, call_id: str, on: bool) -> dict[str, Any]:
        call = await self._call(sup, call_id, "mute" if on else "unmute")
        self._busy(call_id, "mute")
        current = self.modes.get(call_id)
        if on and current is None:
            call.take_over(f"{sup.actor} (bot muted)")
            self.modes[call_id] = Mode("mute", sup)
            self.console.audit(sup, "mute", call_id)
            self._event(call, "mute", detail="the bot is muted")
        elif not on and current is not None:
            self.modes.pop(call_id, None)
            call.hand_back()
            self.console.audit(sup, "unmute", call_id, f"muted by {current.supervisor.actor}")
            self._event(call, "unmute", detail="the bot speaks again")
        return {"ok": True, **self.state(call_id)}

    async def hold(self, sup: Supervisor, call_id: str, on: bool) -> dict[str, Any]:
        call = await self._call(sup, call_id, "hold" if on else "resume")
        self._busy(call_id, "hold")
        s = self.console.settings
        current = self.modes.get(call_id)
        if on and current is None:
            self.modes[call_id] = Mode("hold", sup)  # reserve before the notice plays
            self.console.audit(sup, "hold", call_id, s.hold_notice)
            self._event(call, "hold", notice=s.hold_notice, detail="the caller is on hold")
            await say_and_wait(call, s.hold_notice)
            if self.modes.get(call_id) is not None and self.console.takeovers.get(call_id) is None:
                call.take_over(f"{sup.actor} (on hold)")
        elif not on and current is not None:
            self.modes.pop(call_id, None)
            call.hand_back()
            self.console.audit(sup, "resume", call_id, f"held by {current.supervisor.actor}")
            self._event(call, "resume", notice=s.resume_notice, detail="the bot has the call again")
            if s.resume_notice:
                call.say(s.resume_notice)
        return {"ok": True, **self.state(call_id)}

    # ---- transfer -----------------------------------------------------------------------------
    async def transfer(self, sup: Supervisor, call_id: str, target: str) -> dict[str, Any]:
        target = (target or "").strip()
        if not target or len(target) > MAX_TARGET or any(ord(c) < 32 for c in target):
            raise ControlError(400, f"a transfer target is a number or SIP URI of 1 to {MAX_TARGET} characters")
        call = await self._call(sup, call_id, "transfer")
        if call.info.transport == "webrtc":
            self.console.audit(sup, "transfer_refused", call_id, f"{target}: a browser call cannot be transferred")
            raise ControlError(409, "a browser call cannot be transferred (WebRTC has no transfer); take it over")
        self.console.audit(sup, "transfer", call_id, target)
        self._event(call, "transfer", detail=target)
        try:
            ok = await call.transport.transfer(target)
        except Exception as e:  # the carrier's refusal is not our crash
            log.info("controls: transfer of %s failed: %r", call_id, e)
            ok = False
        call.emit(Action(call_id=call.info.call_id, t=call.now, name="transfer", target=target, ok=ok))
        if not ok:
            self.console.audit(sup, "transfer_failed", call_id, target)
            raise ControlError(502, f"the {call.info.transport} transport could not transfer the call to {target}")
        return {"ok": True, "target": target}

    # ---- policy -------------------------------------------------------------------------------
    def _store(self) -> PolicyStore:
        store = self.console.policy_store()
        if store is None:
            raise ControlError(503, "changing the policy needs the state store (DUPLEXBOT_STATE=1)")
        return store

    async def policy(self, sup: Supervisor) -> dict[str, Any]:
        resolved = await self._store().resolve(sup.tenant)
        p = resolved.policy.to_dict()
        return {"tenant": sup.tenant, "policy": {k: p[k] for k in LIVE_FIELDS},
                "sources": {k: resolved.sources.get(k, "default") for k in LIVE_FIELDS},
                "choices": {"end_of_turn": ["fast", "balanced", "accurate"]}}

    async def set_policy(self, sup: Supervisor, body: Mapping[str, Any]) -> dict[str, Any]:
        changes = {k: v for k, v in body.items() if k != "call_id"}
        unknown = sorted(k for k in changes if k not in LIVE_FIELDS)
        if unknown:
            known = set(BargeInPolicy.field_names())
            what = "cannot be changed from the console" if all(k in known for k in unknown) else "unknown"
            raise ControlError(400, f"{', '.join(unknown)}: {what}; change {' or '.join(LIVE_FIELDS)}")
        if not changes:
            raise ControlError(400, f"name at least one of {', '.join(LIVE_FIELDS)}")
        try:
            new = validate_overrides(changes)
        except PolicyError as e:
            raise ControlError(400, str(e)) from None
        call_id = body.get("call_id")
        call: ControlledCall | None = None
        if call_id is not None:  # the change was made from this call: it must be the tenant's
            if not isinstance(call_id, str) or not call_id:
                raise ControlError(400, "call_id must be a call id")
            call = await self._call(sup, call_id, "policy")
        store = self._store()
        old = (await store.resolve(sup.tenant)).policy.to_dict()
        await store.set(Scope(tenant=sup.tenant), new)
        detail = _describe(old, new)
        self.console.audit(sup, "policy_change", call_id or "", detail)
        if call is not None:
            self._event(call, "policy", detail=detail)
        return {**(await self.policy(sup)), "changed": detail}
