"""Settings: one frozen dataclass per component, built once at start-up from the environment and
passed down (the composition root: nothing below reads the environment). Bad values fail fast
with a ConfigError naming the variable and the form it expects."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from sip.config import SipSettings

from .config import ConfigError, env_choice, env_flag, env_number
from .engine.admission import AdmissionSettings
from .engine.events import Event  # noqa: F401  (re-exported for type hints in callers)
from .engine.scheduler import SchedulerSettings
from .engine.session import EngineSettings
from .policy.base import PolicySettings
from .policy.fusion import FusionSettings
from .services.asr import AsrSettings
from .services.responder import ChatSettings, ResponderSettings
from .services.tts import TtsSettings
from .state.policy import END_OF_TURN_PRESETS
from .state.settings import StateSettings
from .supervisor.auth import SupervisorSettings
from .transports.twilio.settings import TwilioSettings
from .transports.webrtc import WebRTCSettings


def end_of_turn_mode(base: PolicySettings, mode: str) -> PolicySettings:
    """`base` with the model policy's part of an end_of_turn preset (bot/state/policy.py), as the
    process default that calls without a tenant policy get: the p(eot) threshold and the end-of-turn
    fallback, which also sets how long ambiguous words are waited (bot/policy/fusion.py `care`)."""
    _, eot, fallback = END_OF_TURN_PRESETS[mode]
    return replace(base, eot_threshold=eot, max_end_of_turn_silence=fallback)


@dataclass(frozen=True)
class HttpSettings:
    host: str = "0.0.0.0"
    port: int = 8080


def default_data_dir(env: Mapping[str, str]) -> str:
    """DUPLEXBOT_DATA_DIR, else `$XDG_DATA_HOME/duplexbot`, else `~/.local/share/duplexbot`."""
    if env.get("DUPLEXBOT_DATA_DIR"):
        return env["DUPLEXBOT_DATA_DIR"]
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "share")
    return str(Path(base) / "duplexbot")


@dataclass(frozen=True)
class Settings:
    http: HttpSettings = field(default_factory=HttpSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    policy_name: str = "auto"  # "auto" (duplex when the shipped model loads, else baseline) | "baseline" | "duplex"
    policy: PolicySettings = field(default_factory=PolicySettings)
    # the duplex policy fuses the words at each pause with the model (None: model heads only)
    fusion: FusionSettings | None = field(default_factory=FusionSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    asr: AsrSettings = field(default_factory=AsrSettings)
    tts: TtsSettings = field(default_factory=TtsSettings)
    responder: ResponderSettings = field(default_factory=ResponderSettings)
    public_base_url: str = ""  # how Twilio and browsers reach us, e.g. https://bot.example.com
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    state_enabled: bool = True  # Redis call state (embedded Valkey when REDIS_URL is unset)
    event_log: str = ""  # every call's events as JSON lines in this file (bot/engine/event_log.py); "" = none
    # Where the embedded Valkey keeps its data (append-only file), one subfolder per HTTP port so
    # two bots on one machine never share one. None: a temp dir, gone with the process (tests).
    data_dir: str | None = None
    onnx_device: str = "auto"  # where the VAD and duplex model run: "auto" (CUDA when there), "cuda", "cpu"
    webrtc: WebRTCSettings = field(default_factory=WebRTCSettings)
    supervisor: SupervisorSettings = field(default_factory=SupervisorSettings)
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)
    twilio: TwilioSettings = field(default_factory=TwilioSettings)
    sip: SipSettings = field(default_factory=SipSettings)
    # the call store's settings as the environment gives them; `store_settings()` adds this bot's
    # worker id and data dir
    state: StateSettings = field(default_factory=StateSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Every component's settings from `env` (default: the process environment), once, at
        start-up. A bad value raises ConfigError naming the variable and what it expects."""
        e = dict(os.environ if env is None else env)
        policy_name = env_choice(e, "DUPLEXBOT_POLICY", "auto", ("auto", "baseline", "duplex"))
        chat = ChatSettings(base_url=e.get("DUPLEXBOT_LLM_BASE_URL", ""), model=e.get("DUPLEXBOT_LLM_MODEL", ""),
                            api_key=e.get("DUPLEXBOT_LLM_API_KEY", e.get("OPENAI_API_KEY", "")))
        if chat.base_url and not chat.model:
            raise ConfigError("DUPLEXBOT_LLM_BASE_URL is set but DUPLEXBOT_LLM_MODEL is not")
        tts_engine = env_choice(e, "DUPLEXBOT_TTS", "hibari", ("hibari", "piper"))
        overflow = e.get("DUPLEXBOT_OVERFLOW_NUMBER", "").strip()
        if overflow:
            from .transports.twilio.webhook import validate_target

            try:
                overflow = validate_target(overflow)
            except ValueError:
                raise ConfigError(f"DUPLEXBOT_OVERFLOW_NUMBER={overflow!r}: expected an E.164 number like "
                                  "+15551234567 or a sip: URI") from None
        admission = AdmissionSettings(max_calls=env_number(e, "DUPLEXBOT_MAX_CALLS", 0, int, 1, 100000, "calls"),
                                      lag_bound=env_number(e, "DUPLEXBOT_MAX_LOOP_LAG_MS", 150.0, float, 10, 60000,
                                                           "milliseconds") / 1000,
                                      backlog_bound=env_number(e, "DUPLEXBOT_MAX_ENGINE_BACKLOG_MS", 500.0, float, 10,
                                                               60000, "milliseconds") / 1000,
                                      overflow_number=overflow)
        public = e.get("DUPLEXBOT_PUBLIC_URL", "").strip().rstrip("/")
        if public and not public.startswith(("http://", "https://")):
            raise ConfigError(f"DUPLEXBOT_PUBLIC_URL={public!r}: expected an http(s) URL, "
                              "e.g. https://bot.example.com")
        worker_id = e.get("DUPLEXBOT_WORKER_ID") or Settings().worker_id
        try:
            sip = SipSettings.from_env(e)  # sip/ knows nothing of the bot: its errors are ValueErrors
        except ValueError as err:
            raise ConfigError(str(err)) from None
        return cls(
            http=HttpSettings(host=e.get("DUPLEXBOT_HOST", "0.0.0.0"),
                              port=env_number(e, "DUPLEXBOT_PORT", 8080, int, 0, 65535)),
            policy_name=policy_name,
            fusion=FusionSettings() if env_flag(e, "DUPLEXBOT_TURN_WORDS", True) else None,
            policy=end_of_turn_mode(
                replace(PolicySettings(), end_of_turn_silence=env_number(e, "DUPLEXBOT_EOT_SILENCE", 0.5, float,
                                                                         0.05, 5.0, "seconds")),
                env_choice(e, "DUPLEXBOT_END_OF_TURN", "balanced", tuple(END_OF_TURN_PRESETS))),
            tts=TtsSettings(engine=tts_engine),
            responder=ResponderSettings(agent_path=e.get("DUPLEXBOT_AGENT", ResponderSettings().agent_path),
                                        chat=chat),
            public_base_url=public,
            worker_id=worker_id,
            state_enabled=e.get("DUPLEXBOT_STATE", "1") not in ("0", "false", "off"),
            event_log=e.get("DUPLEXBOT_EVENT_LOG", "").strip(),
            data_dir=default_data_dir(e),
            onnx_device=env_choice(e, "DUPLEXBOT_ONNX_DEVICE", "auto", ("auto", "cuda", "cpu")),
            webrtc=WebRTCSettings.from_env(e),
            supervisor=SupervisorSettings.from_env(e),
            admission=admission,
            twilio=TwilioSettings.from_env(e, public_base_url=public),
            sip=sip,
            state=StateSettings.from_env(e, worker_id=worker_id),
        )

    @property
    def state_data_dir(self) -> Path | None:
        """The embedded store's data dir for this bot: `<data_dir>/port-<HTTP port>`."""
        return Path(self.data_dir) / f"port-{self.http.port}" if self.data_dir else None

    def store_settings(self) -> StateSettings:
        """The call store's settings: `state` with this bot's worker id, its embedded server's
        data in `state_data_dir` (unless DUPLEXBOT_VALKEY_DIR named a dir of its own)."""
        s = replace(self.state, worker_id=self.worker_id)
        if not s.embedded_persist and self.state_data_dir is not None:
            s = replace(s, embedded_dir=str(self.state_data_dir), embedded_persist=True)
        return s

    @classmethod
    def for_tests(cls, **overrides: Any) -> "Settings":
        """Settings for tests: a free HTTP port on 127.0.0.1, the embedded store in a temp dir
        (never the user's data dir; pass data_dir= to persist), everything else default."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = cls.from_env()
        url = f"http://127.0.0.1:{port}"
        base = replace(base, http=HttpSettings(host="127.0.0.1", port=port), public_base_url=url, data_dir=None,
                       twilio=replace(base.twilio, public_base_url=url))
        return replace(base, **overrides)
