"""The supervisor console's service: which calls a supervisor may see, and the listen / whisper /
take-over actions on them, each audited. The HTTP/WebSocket edge is `bot/routes/supervisor.py`.

Tenancy: a supervisor acts only on calls of their own tenant. A call of another tenant answers
403 and the attempt is audited (action "denied"). Calls live on whichever worker answered them;
listening and taking over need the call's session, so they work on the worker that holds the call
(another worker answers 409 naming it).
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Awaitable

from aiortc import RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from ..audio.frame import AudioFrame
from ..engine.events import CallEnded, SupervisorControl
from ..services.responder import WhisperReview
from ..state.policy_store import PolicyStore
from ..state.store import CallStore
from ..transports.webrtc import WebRTCSettings, av_frame_to_mono, new_peer_connection, offer_problem, prefer_codecs
from .auth import Authenticator, Supervisor, SupervisorSettings
from .controls import CallControls, ControlledCall, say_and_wait
from .listen import ListenFeed, ListenTrack

log = logging.getLogger(__name__)

MAX_WHISPER = 500


class ConsoleError(Exception):
    """A refused console request; `status` is the HTTP status (the supervisor's fault unless 5xx)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Listener:
    id: str
    supervisor: Supervisor
    call_id: str
    pc: Any
    feed: ListenFeed
    remove_tap: Any


@dataclass
class Takeover:
    supervisor: Supervisor
    call_id: str
    pc: Any
    session: Any
    port: Any = None
    reader: asyncio.Task | None = None
    announce: asyncio.Task | None = None  # the take-over notice playing before the supervisor's voice
    frames: int = 0
    bad_frames: int = 0


@dataclass
class ConsoleStats:
    audits: int = 0
    audit_errors: int = 0
    denied: int = 0
    counts: dict = field(default_factory=dict)


class SupervisorConsole:
    def __init__(self, runtime: Any, settings: SupervisorSettings, webrtc: WebRTCSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.webrtc = webrtc
        self.auth = Authenticator(settings)
        self.listeners: dict[str, Listener] = {}
        self.takeovers: dict[str, Takeover] = {}
        self.stats = ConsoleStats()
        self._watchers: dict[str, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()
        self.controls = CallControls(self)

    def policy_store(self) -> PolicyStore | None:
        state = self.runtime.state
        return state.policies if isinstance(state, CallStore) else None

    # ---- audit --------------------------------------------------------------------------------
    def audit(self, sup: Supervisor, action: str, call_id: str = "", detail: str = "") -> None:
        self.stats.audits += 1
        try:
            res = self.runtime.state.audit(tenant=sup.tenant, actor=sup.actor, action=action, call_id=call_id,
                                           detail=detail)
            if inspect.isawaitable(res):
                self._spawn(res)
        except Exception:
            self.stats.audit_errors += 1
            log.exception("supervisor: audit of %s by %s failed", action, sup.actor)

    def _spawn(self, aw: Awaitable[Any]) -> asyncio.Future[Any]:
        t = asyncio.ensure_future(aw)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    # ---- calls --------------------------------------------------------------------------------
    async def live_calls(self, sup: Supervisor) -> list[dict]:
        calls = await self.runtime.state.live_calls(sup.tenant)
        out = []
        for rec in calls:
            if rec.get("tenant") != sup.tenant:  # belt and braces: the store filters already
                continue
            cid = rec.get("call_id", "")
            d = {k: rec.get(k, "") for k in ("call_id", "transport", "caller", "callee", "tenant", "worker",
                                             "started")}
            d["local"] = self.runtime.calls.get(cid) is not None
            d["listeners"] = sum(1 for lst in self.listeners.values() if lst.call_id == cid)
            t = self.takeovers.get(cid)
            d["taken_over_by"] = t.supervisor.actor if t else ""
            mode = self.controls.state(cid)
            d["mode"], d["mode_by"] = mode["mode"], mode["by"]
            out.append(d)
        return out

    async def session_for(self, sup: Supervisor, call_id: str, action: str) -> Any:
        """The local session of a call this supervisor may act on, or ConsoleError (403 audited)."""
        session = self.runtime.calls.get(call_id)
        tenant = session.info.tenant if session is not None else None
        worker = ""
        if session is None:
            rec = next((c for c in await self.runtime.state.live_calls(None) if c.get("call_id") == call_id), None)
            if rec is None:
                raise ConsoleError(404, "no such live call")
            tenant, worker = rec.get("tenant"), rec.get("worker", "")
        if tenant != sup.tenant:
            self.stats.denied += 1
            self.audit(sup, "denied", call_id, f"{action}: call belongs to another tenant")
            raise ConsoleError(403, "this call belongs to another tenant")
        if session is None:
            raise ConsoleError(409, f"this call is handled by worker {worker}; connect to that worker")
        return session

    def follow_call(self, session: Any) -> None:
        """Stop listeners and take-overs when the call ends."""
        cid = session.info.call_id
        if cid in self._watchers:
            return
        q = session.subscribe()

        async def watch() -> None:
            try:
                while True:
                    ev = await q.get()
                    if isinstance(ev, CallEnded):
                        break
            except asyncio.CancelledError:
                return
            finally:
                session.unsubscribe(q)
                self._watchers.pop(cid, None)
            await self.end_call(cid, "call ended")

        self._watchers[cid] = asyncio.ensure_future(watch())

    async def end_call(self, call_id: str, reason: str) -> None:
        for lid in [lid for lid, lst in self.listeners.items() if lst.call_id == call_id]:
            await self.stop_listen(lid, reason)
        if call_id in self.takeovers:
            await self.hand_back(self.takeovers[call_id].supervisor, call_id, reason)
        self.controls.release(call_id)

    # ---- listen -------------------------------------------------------------------------------
    async def listen(self, sup: Supervisor, call_id: str, offer_sdp: str) -> dict:
        session = await self.session_for(sup, call_id, "listen")
        problem = offer_problem(offer_sdp)
        if problem is not None:
            raise ConsoleError(400, problem)
        if sum(1 for lst in self.listeners.values() if lst.call_id == call_id) >= self.settings.max_listeners_per_call:
            raise ConsoleError(429, "too many listeners on this call")
        feed = ListenFeed(self.settings.listen_buffer)
        pc = new_peer_connection(self.webrtc)
        track = ListenTrack(feed)
        prefer_codecs(pc.addTransceiver(track, direction="sendonly"), ("opus", "PCMU"))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception:
            log.info("supervisor: cannot answer a listen offer for %s", call_id, exc_info=True)
            track.stop()
            await pc.close()
            raise ConsoleError(400, "cannot answer this offer: it must receive audio (Opus or PCMU)")
        lid = secrets.token_hex(8)
        listener = Listener(lid, sup, call_id, pc, feed, session.add_audio_tap(feed))
        self.listeners[lid] = listener

        def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and lid in self.listeners:
                self._spawn(self.stop_listen(lid, "disconnected"))

        pc.on("connectionstatechange", on_state)
        self.audit(sup, "listen_start", call_id)
        self.follow_call(session)
        return {"type": "answer", "sdp": pc.localDescription.sdp, "listener_id": lid}

    async def stop_listen(self, lid: str, reason: str, sup: Supervisor | None = None) -> bool:
        lst = self.listeners.get(lid)
        if lst is None or (sup is not None and sup.tenant != lst.supervisor.tenant):
            return False
        del self.listeners[lid]
        try:
            lst.remove_tap()
        except Exception:
            log.exception("supervisor: removing the audio tap failed")
        f = lst.feed
        self.audit(lst.supervisor, "listen_stop", lst.call_id,
                   f"{reason}; dropped {f.dropped_samples / 16000:.2f}s, underruns {f.underruns}")
        await lst.pc.close()
        return True

    # ---- whisper ------------------------------------------------------------------------------
    async def whisper(self, sup: Supervisor, call_id: str, text: str) -> WhisperReview:
        """The call's responder reviews the whisper first: the offline agent refuses one it cannot
        follow (422, with the reason, audited as whisper_refused) rather than read it aloud."""
        text = (text or "").strip()
        if not text or len(text) > MAX_WHISPER:
            raise ConsoleError(400, f"a whisper is 1 to {MAX_WHISPER} characters")
        session = await self.session_for(sup, call_id, "whisper")
        review = session.responder.review_whisper(text)
        if not review.accepted:
            self.audit(sup, "whisper_refused", call_id, text)
            raise ConsoleError(422, review.effect)
        session.whisper(text, sup.actor)
        self.audit(sup, "whisper", call_id, text)
        return review

    # ---- take over ----------------------------------------------------------------------------
    async def take_over(self, sup: Supervisor, call_id: str, offer_sdp: str) -> dict:
        session = await self.session_for(sup, call_id, "take_over")
        problem = offer_problem(offer_sdp)
        if problem is not None:
            raise ConsoleError(400, problem)
        if call_id in self.takeovers:
            raise ConsoleError(409, f"already taken over by {self.takeovers[call_id].supervisor.actor}")
        pc = new_peer_connection(self.webrtc)
        tk = Takeover(sup, call_id, pc, session)
        self.takeovers[call_id] = tk  # reserve before the first await

        def on_track(track: Any) -> None:
            if track.kind == "audio" and tk.reader is None:
                tk.reader = asyncio.ensure_future(self._pump(tk, track))

        pc.on("track", on_track)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            for tr in pc.getTransceivers():
                if tr.kind == "audio":
                    prefer_codecs(tr, ("opus", "PCMU"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception:
            log.info("supervisor: cannot answer a take-over offer for %s", call_id, exc_info=True)
            self.takeovers.pop(call_id, None)
            await pc.close()
            raise ConsoleError(400, "cannot answer this offer: it must send audio (Opus or PCMU)")
        if self.controls.release(call_id) is not None:  # a take-over replaces a mute or a hold:
            session.hand_back()  # out of the silent take-over, so the caller hears the notice
        notice = self.settings.takeover_notice
        if notice and isinstance(session, ControlledCall):
            session.emit(SupervisorControl(call_id=call_id, t=session.now, action="takeover", notice=notice))
            tk.announce = asyncio.ensure_future(self._announce(tk, notice))
        else:
            tk.port = session.take_over(sup.actor)
        self.audit(sup, "takeover_start", call_id, f"notice: {notice}" if notice else "")

        def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and self.takeovers.get(call_id) is tk:
                self._spawn(self.hand_back(sup, call_id, "supervisor disconnected"))

        pc.on("connectionstatechange", on_state)
        self.follow_call(session)
        return {"type": "answer", "sdp": pc.localDescription.sdp}

    async def _announce(self, tk: Takeover, notice: str) -> None:
        """The bot says the take-over notice; the supervisor's voice replaces it once it has played
        (their microphone is not heard before: `_pump` drops frames while `tk.port` is None)."""
        try:
            await say_and_wait(tk.session, notice)
        except asyncio.CancelledError:
            return
        if self.takeovers.get(tk.call_id) is tk and self.runtime.calls.get(tk.call_id) is tk.session:
            tk.port = tk.session.take_over(tk.supervisor.actor)

    async def _pump(self, tk: Takeover, track: Any) -> None:
        """The supervisor's microphone into the call, in place of the bot."""
        pos = 0
        try:
            while True:
                frame = await track.recv()
                try:
                    pcm = av_frame_to_mono(frame)
                    out = AudioFrame(pcm, frame.sample_rate, pos / frame.sample_rate)
                except ValueError:
                    tk.bad_frames += 1
                    continue
                pos += len(pcm)
                if tk.port is not None:
                    tk.port.push(out)
                    tk.frames += 1
        except (MediaStreamError, asyncio.CancelledError):
            pass

    async def hand_back(self, sup: Supervisor, call_id: str, reason: str = "handed back") -> None:
        tk = self.takeovers.get(call_id)
        if tk is None:
            raise ConsoleError(404, "this call is not taken over")
        if tk.supervisor.tenant != sup.tenant:
            self.stats.denied += 1
            self.audit(sup, "denied", call_id, "hand_back: call belongs to another tenant")
            raise ConsoleError(403, "this call belongs to another tenant")
        del self.takeovers[call_id]
        if tk.announce is not None:
            tk.announce.cancel()
        if tk.reader is not None:
            tk.reader.cancel()
        try:
            if tk.port is not None:
                tk.port.release()
            if self.runtime.calls.get(call_id) is tk.session:
                tk.session.hand_back()
        except Exception:
            log.exception("supervisor: hand back of %s failed", call_id)
        self.audit(tk.supervisor, "takeover_stop", call_id, f"{reason} by {sup.actor}; {tk.frames} frames")
        if isinstance(tk.session, ControlledCall) and self.runtime.calls.get(call_id) is tk.session:
            tk.session.emit(SupervisorControl(call_id=call_id, t=tk.session.now, action="handback",
                                              detail="the bot has the call again"))
        await tk.pc.close()
        if tk.reader is not None:
            try:
                await tk.reader
            except asyncio.CancelledError:
                pass

    async def close(self) -> None:
        for cid in list(self.takeovers):
            await self.hand_back(self.takeovers[cid].supervisor, cid, "shutdown")
        for lid in list(self.listeners):
            await self.stop_listen(lid, "shutdown")
        for t in list(self._watchers.values()):
            t.cancel()
        await asyncio.gather(*self._watchers.values(), *self._tasks, return_exceptions=True)
