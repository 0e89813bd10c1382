"""Settings: one frozen dataclass per component, built once at start-up from the environment and
passed down. Bad values fail fast with a message naming the variable."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, TypeVar

from .engine.admission import AdmissionSettings
from .engine.events import Event  # noqa: F401  (re-exported for type hints in callers)
from .engine.scheduler import SchedulerSettings
from .engine.session import EngineSettings
from .policy.base import PolicySettings
from .policy.fusion import FusionSettings
from .services.asr import AsrSettings
from .services.responder import ChatSettings, ConfigError, ResponderSettings
from .services.tts import TtsSettings
from .supervisor.auth import SupervisorSettings
from .transports.webrtc import WebRTCSettings

_Num = TypeVar("_Num", int, float)


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
    # Where the embedded Valkey keeps its data (append-only file), one subfolder per HTTP port so
    # two bots on one machine never share one. None: a temp dir, gone with the process (tests).
    data_dir: str | None = None
    webrtc: WebRTCSettings = field(default_factory=WebRTCSettings)
    supervisor: SupervisorSettings = field(default_factory=SupervisorSettings)
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)
    env: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        e = dict(os.environ if env is None else env)

        def num(name: str, default: _Num, cast: type[_Num], lo: float | None = None, hi: float | None = None) -> _Num:
            raw = e.get(name)
            if raw is None or raw == "":
                return default
            try:
                v = cast(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a valid {cast.__name__}") from None
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ConfigError(f"{name}={raw!r} is out of range [{lo}, {hi}]")
            return v

        def flag(name: str, default: bool) -> bool:
            raw = e.get(name, "").strip().lower()
            if not raw:
                return default
            if raw not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ConfigError(f"{name}={e[name]!r}: use 1 or 0")
            return raw in ("1", "true", "yes", "on")

        policy_name = e.get("DUPLEXBOT_POLICY", "auto")
        if policy_name not in ("auto", "baseline", "duplex"):
            raise ConfigError(f"DUPLEXBOT_POLICY={policy_name!r}: choose auto, baseline or duplex")
        chat = ChatSettings(base_url=e.get("DUPLEXBOT_LLM_BASE_URL", ""), model=e.get("DUPLEXBOT_LLM_MODEL", ""),
                            api_key=e.get("DUPLEXBOT_LLM_API_KEY", e.get("OPENAI_API_KEY", "")))
        if chat.base_url and not chat.model:
            raise ConfigError("DUPLEXBOT_LLM_BASE_URL is set but DUPLEXBOT_LLM_MODEL is not")
        tts_engine = e.get("DUPLEXBOT_TTS", "hibari")
        if tts_engine not in ("hibari", "piper"):
            raise ConfigError(f"DUPLEXBOT_TTS={tts_engine!r}: choose hibari or piper")
        overflow = e.get("DUPLEXBOT_OVERFLOW_NUMBER", "").strip()
        if overflow:
            from .transports.twilio.webhook import validate_target

            try:
                overflow = validate_target(overflow)
            except ValueError:
                raise ConfigError(f"DUPLEXBOT_OVERFLOW_NUMBER={overflow!r}: expected an E.164 number like "
                                  "+15551234567 or a sip: URI") from None
        admission = AdmissionSettings(max_calls=num("DUPLEXBOT_MAX_CALLS", 0, int, 1, 100000),
                                      lag_bound=num("DUPLEXBOT_MAX_LOOP_LAG_MS", 150.0, float, 10, 60000) / 1000,
                                      overflow_number=overflow)
        return cls(
            http=HttpSettings(host=e.get("DUPLEXBOT_HOST", "0.0.0.0"),
                              port=num("DUPLEXBOT_PORT", 8080, int, 0, 65535)),
            policy_name=policy_name,
            fusion=FusionSettings() if flag("DUPLEXBOT_TURN_WORDS", True) else None,
            policy=replace(PolicySettings(),
                           end_of_turn_silence=num("DUPLEXBOT_EOT_SILENCE", 0.5, float, 0.05, 5.0)),
            tts=TtsSettings(engine=tts_engine),
            responder=ResponderSettings(agent_path=e.get("DUPLEXBOT_AGENT", ResponderSettings().agent_path),
                                        chat=chat),
            public_base_url=e.get("DUPLEXBOT_PUBLIC_URL", "").rstrip("/"),
            worker_id=e.get("DUPLEXBOT_WORKER_ID") or Settings().worker_id,
            state_enabled=e.get("DUPLEXBOT_STATE", "1") not in ("0", "false", "off"),
            data_dir=default_data_dir(e),
            webrtc=WebRTCSettings.from_env(e),
            supervisor=SupervisorSettings.from_env(e),
            admission=admission,
            env=e,
        )

    @property
    def state_data_dir(self) -> Path | None:
        """The embedded store's data dir for this bot: `<data_dir>/port-<HTTP port>`."""
        return Path(self.data_dir) / f"port-{self.http.port}" if self.data_dir else None

    @classmethod
    def for_tests(cls, **overrides: Any) -> "Settings":
        """Settings for tests: a free HTTP port on 127.0.0.1, the embedded store in a temp dir
        (never the user's data dir; pass data_dir= to persist), everything else default."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = cls.from_env()
        base = replace(base, http=HttpSettings(host="127.0.0.1", port=port),
                       public_base_url=f"http://127.0.0.1:{port}", data_dir=None)
        return replace(base, **overrides)
