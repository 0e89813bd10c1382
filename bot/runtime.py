"""The composition root: builds every shared service once per process and runs calls.

One `Runtime` per process holds the inference scheduler (batched VAD and duplex model for every
live call), ASR, TTS, the agent script, the Redis call store and the `CallManager`. Transports only
ever call `runtime.calls.run(transport)`.
"""
from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable

from .brain import OpenAIChatResponder
from .brain.intents import IntentDetector, IntentSpec, agent_intents
from .brain.tools import ToolSet, parse_tools
from .config import ConfigError
from .engine.admission import AdmissionController
from .engine.event_log import EventLog
from .engine.events import Event
from .engine.looplag import LoopLagMonitor
from .engine.port import EXPECT_DIGITS, Transport
from .engine.scheduler import InferenceScheduler
from .engine.session import CallSession
from .engine.turn_timing import TurnTiming
from .engine.vad import SileroVad
from .policy.base import PolicySettings, TurnPolicy
from .policy.baseline import VadTimeoutPolicy
from .services.asr import Asr, WhisperAsr
from .services.responder import AgentScript, Responder, ScriptedAgent, read_agent_file
from .services.tts import Tts, make_tts
from .settings import Settings

if TYPE_CHECKING:
    from models.runtime import DuplexModel

    from .state.health import StoreWatch
    from .state.store import CallStore

log = logging.getLogger(__name__)


@dataclass
class Services:
    scheduler: InferenceScheduler
    asr: Asr
    tts: Tts
    duplex_model: DuplexModel | None = None
    set_secure: Callable[[str, bool], None] = field(default=lambda call_id, on: None)


def load_duplex_model(device: str = "auto") -> DuplexModel | None:
    """The shipped duplex model as a streaming batch model on `device` (`Settings.onnx_device`),
    or None with the reason logged."""
    try:
        from models.runtime import DuplexModel
    except ImportError as e:
        log.info("duplex model runtime not available (%s); using the baseline policy", e)
        return None
    try:
        return DuplexModel(device=device)
    except Exception as e:  # noqa: BLE001 - any failure means: fall back, loudly
        log.warning("duplex model failed to load (%s); using the baseline policy", e)
        return None


def calibrate(settings: PolicySettings, eot: float, interrupt: float) -> PolicySettings:
    """Map neutral-relative thresholds onto a model's tuned operating point: 0.5 (the neutral
    setting, what tenants get by default) becomes the threshold the model was tuned to on its dev
    split; 0 and 1 stay the extremes, and values in between move linearly towards them."""
    def m(v: float, rec: float) -> float:
        return rec * v / 0.5 if v <= 0.5 else rec + (v - 0.5) / 0.5 * (1.0 - rec)
    return replace(settings, eot_threshold=round(m(settings.eot_threshold, eot), 4),
                   interrupt_threshold=round(m(settings.interrupt_threshold, interrupt), 4))


def duplex_operating_point(model: DuplexModel) -> tuple[float, float] | None:
    rec = model.manifest.raw.get("recommended", {})
    try:
        return float(rec["eot_threshold"]), float(rec["interrupt_threshold"])
    except (KeyError, TypeError, ValueError):
        return None


def duplex_is_default(model: DuplexModel) -> bool:
    """The shipped model becomes the default policy only when its manifest records that it beat the
    baselines on the held-out test split (`duplexbot eval turns`)."""
    return bool(model.manifest.raw.get("default_policy", False))


class CallManager:
    def __init__(self, runtime: "Runtime"):
        self.runtime = runtime
        self._calls: dict[str, CallSession] = {}
        self.finished = 0

    def get(self, call_id: str) -> CallSession | None:
        return self._calls.get(call_id)

    def live(self) -> list[CallSession]:
        return list(self._calls.values())

    def create(self, transport: Transport, sinks: list[Callable[[Event], None]] | None = None,
               policy_settings: PolicySettings | None = None) -> CallSession:
        rt = self.runtime
        call_id = transport.info.call_id
        if call_id in self._calls:
            raise ValueError(f"call {call_id} is already live on this worker")
        all_sinks: list[Callable[[Event], None]] = [*(sinks or []), TurnTiming()]
        if rt.state is not None:
            all_sinks.append(rt.state.emit)
        if rt.event_log is not None:
            all_sinks.append(rt.event_log.emit)
        session = CallSession(transport, rt.make_policy(policy_settings), rt.make_responder(), rt.services,
                              rt.settings.engine, all_sinks, calibrate=rt.calibrate_policy,
                              intents=IntentDetector(rt.intents))
        if (n := transport.info.extra.get(EXPECT_DIGITS, "")).isdigit():  # the call is there to take a number
            session.expect_digits(int(n))
        self._calls[call_id] = session
        return session

    def start(self, transport: Transport, sinks: list[Callable[[Event], None]] | None = None,
              policy_settings: PolicySettings | None = None) -> CallSession:
        """Create the call's session now and run it in a task (`session.task`). The tenant's policy
        from Redis applies as soon as it is read, and live changes follow it."""
        return self._launch(transport, sinks, policy_settings)[0]

    async def run(self, transport: Transport, sinks: list[Callable[[Event], None]] | None = None) -> CallSession:
        session, task = self._launch(transport, sinks, None)
        await task
        return session

    def _launch(self, transport: Transport, sinks: list[Callable[[Event], None]] | None,
                policy_settings: PolicySettings | None) -> tuple[CallSession, asyncio.Task[None]]:
        session = self.create(transport, sinks, policy_settings)
        task = asyncio.create_task(self._drive(session, policy_settings is None), name=f"call-{transport.info.call_id}")
        session.task = task
        return session, task

    async def _drive(self, session: CallSession, use_stored_policy: bool) -> None:
        rt, info = self.runtime, session.info
        unwatch: Callable[[], None] | None = None
        try:
            if rt.state is not None:
                try:
                    if use_stored_policy:
                        session.update_policy(await rt.state.policy_for(info))
                    await rt.state.call_started(info)
                    unwatch = rt.state.watch_policy(info, session.update_policy)
                except Exception as e:  # noqa: BLE001 - Redis down: defaults, the call goes on
                    log.warning("call store unavailable at call start of %s: %s", info.call_id, e)
            await session.run()
        finally:
            self._calls.pop(info.call_id, None)
            self.finished += 1
            if unwatch:
                unwatch()
            if rt.state is not None:
                try:
                    await rt.state.call_ended(info.call_id, session.end_reason or "ended")
                except Exception as e:  # noqa: BLE001
                    log.warning("call store unavailable at call end of %s: %s", info.call_id, e)


class Runtime:
    def __init__(self, settings: Settings, services: Services, script: AgentScript,
                 state: CallStore | None = None, tools: ToolSet = ToolSet(),
                 intents: tuple[IntentSpec, ...] = ()):
        self.settings = settings
        self.services = services
        self.script = script
        self.state = state
        self.store_watch: StoreWatch | None = None  # the store's health monitor and supervisor
        self.calls = CallManager(self)
        self.admission = AdmissionController(settings.admission)   # every transport asks it first
        self.lag_monitor = LoopLagMonitor(self._sample_load)
        self.policy_name = "duplex" if services.duplex_model is not None else "baseline"
        self.tools = tools  # the agent file's, declared once for every call
        self.intents = intents
        self._prewarm: asyncio.Task[int] | None = None
        self.event_log: EventLog | None = None

    def _sample_load(self, lag: float, now: float) -> None:
        """Every ~100 ms: the loop's delay and the worst call's backlog, for admission."""
        self.admission.record_lag(lag, now)
        self.admission.record_backlog(max((c.transport.inbox.held_seconds for c in self.calls.live()), default=0.0),
                                      now)

    @classmethod
    async def start(cls, settings: Settings) -> "Runtime":
        loop = asyncio.get_running_loop()
        # the agent file read once: its script, tools and intents (a bad declaration fails here,
        # before any model loads)
        path = settings.responder.agent_path
        agent = read_agent_file(path)
        script = AgentScript.from_dict(agent, path)
        tools, intents = parse_tools(agent, path), agent_intents(agent, path)
        event_log = None
        if settings.event_log:  # before any model loads: a path that cannot be written fails now
            try:
                event_log = EventLog(settings.event_log)
            except OSError as e:
                raise ConfigError(f"DUPLEXBOT_EVENT_LOG={settings.event_log!r}: cannot write it ({e})") from None
        vad = SileroVad(device=settings.onnx_device)
        duplex = None
        if settings.policy_name in ("auto", "duplex"):
            duplex = await loop.run_in_executor(None, load_duplex_model, settings.onnx_device)
            if duplex is None and settings.policy_name == "duplex":
                raise RuntimeError("DUPLEXBOT_POLICY=duplex but the duplex model could not be loaded")
            if duplex is not None and settings.policy_name == "auto" and not duplex_is_default(duplex):
                log.info("the shipped duplex model is not marked as beating the baselines; using the baseline "
                         "(DUPLEXBOT_POLICY=duplex to use it anyway)")
                duplex = None
        asr, tts = await asyncio.gather(loop.run_in_executor(None, WhisperAsr, settings.asr),
                                        loop.run_in_executor(None, make_tts, settings.tts))
        scheduler = InferenceScheduler([vad] + ([duplex] if duplex is not None else []), settings.scheduler)
        await scheduler.start()
        state = None
        if settings.state_enabled:
            from .state.store import CallStore

            state = await CallStore.open(settings.store_settings(),
                                         base_settings=settings.policy, http_port=settings.http.port)
        services = Services(scheduler, asr, tts, duplex)
        if state is not None:
            services.set_secure = state.set_secure_input
        rt = cls(settings, services, script, state, tools, intents)
        rt.event_log = event_log
        if state is not None:
            from .state.health import StoreWatch

            rt.store_watch = StoreWatch(state)
            rt.store_watch.start()
        rt.lag_monitor.start()
        if not settings.responder.chat.base_url:
            rt._prewarm = asyncio.create_task(tts.prewarm(script.prompts()), name="tts-prewarm")
        # everything alive now (models, tokenizers, the agent, imported libraries) lives as long as the
        # process: moved out of the collector's sight, so a full collection walks only what calls
        # allocate. A gen-2 pass over a start-up heap of ~600k objects stopped the event loop for
        # 0.3-0.5 s on the 2-core box (an OPTIONS probe answered in 0.6-1.0 s during the SIP flood test)
        gc.collect()
        gc.freeze()
        log.info("runtime ready: policy=%s, vad on %s (%d objects frozen)", rt.policy_name, vad.providers,
                 gc.get_freeze_count())
        return rt

    def calibrate_policy(self, settings: PolicySettings) -> PolicySettings:
        point = duplex_operating_point(self.services.duplex_model) if self.services.duplex_model is not None else None
        return calibrate(settings, *point) if point else settings

    def make_policy(self, settings: PolicySettings | None = None) -> TurnPolicy:
        s = self.calibrate_policy(settings or self.settings.policy)
        if self.services.duplex_model is not None:
            from .policy.duplex import DuplexPolicy, DuplexTuning

            rec = self.services.duplex_model.manifest.raw.get("recommended", {})
            return DuplexPolicy(s, DuplexTuning.from_manifest(rec), self.settings.fusion)
        return VadTimeoutPolicy(s)

    def make_responder(self) -> Responder:
        chat = self.settings.responder.chat
        if chat.base_url:
            return OpenAIChatResponder(chat, self.script, self.tools)
        return ScriptedAgent(self.script)

    async def close(self) -> None:
        await self.lag_monitor.close()
        if self._prewarm is not None:
            self._prewarm.cancel()
            await asyncio.gather(self._prewarm, return_exceptions=True)
        live = self.calls.live()
        for s in live:
            await s.hangup("shutdown")
        tasks = [s.task for s in live if s.task is not None]
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=5)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.services.scheduler.close()
        self.services.asr.close()
        self.services.tts.close()
        if self.store_watch is not None:
            await self.store_watch.stop()
        if self.state is not None:
            await self.state.close()
        if self.event_log is not None:
            self.event_log.close()

