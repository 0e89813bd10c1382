"""Settings of the call-state store (one frozen dataclass, built once from the environment)."""
from __future__ import annotations

import os
import socket
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..config import ConfigError, env_flag, env_number

DAY = 86400


def default_runtime_dir(xdg_runtime_dir: str | None = None) -> Path:
    """This user's duplexbot dir under `xdg_runtime_dir` (`$XDG_RUNTIME_DIR`, read by
    `StateSettings.from_env`), else under the temp dir."""
    return Path(xdg_runtime_dir or tempfile.gettempdir()) / f"duplexbot-{os.getuid()}"


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Retention:
    """How long each data class is kept, in seconds (enforced with Redis TTLs)."""
    events: int = 7 * DAY  # per-call and global event streams, call records
    transcripts: int = 30 * DAY
    recordings: int = 30 * DAY  # recording metadata and consent records
    audit: int = 365 * DAY

    def __post_init__(self) -> None:
        for name in ("events", "transcripts", "recordings", "audit"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"retention {name} must be a positive number of seconds, got {v!r}")


@dataclass(frozen=True)
class StateSettings:
    redis_url: str | None = None  # None: start an embedded Valkey server
    prefix: str = "dx"
    worker_id: str = field(default_factory=_default_worker_id)
    retention: Retention = field(default_factory=Retention)
    heartbeat_interval: float = 2.0  # seconds between heartbeats of this worker's live calls
    heartbeat_ttl: float = 10.0  # a live call with no heartbeat for this long is reaped
    reaper_interval: float = 5.0
    # Events held in memory while Redis is away (about 770 B each: 100k is ~75 MB); beyond it new
    # events are dropped and counted. Call records, audit and recording ops are never dropped.
    buffer_max: int = 100_000
    batch_max: int = 256  # events per write
    retry_max: float = 1.0  # the writer's backoff between retries grows to this (s)
    health_interval: float = 1.0  # the store is PINGed this often for /healthz (s)
    supervise_interval: float = 0.5  # the embedded server's process is probed this often (s)
    supervise_hang_after: float = 15.0  # a server that exists but does not answer this long is restarted
    supervise_backoff_max: float = 30.0  # failed restarts are retried with backoff up to this (s)
    # Approximate cap on the global stream (all calls' events, for live consumers); per-call streams
    # keep each call's full history for retention.events.
    global_maxlen: int = 200_000
    op_timeout: float = 1.0  # how long call_started/call_ended wait for Redis before going on
    socket_timeout: float = 2.0
    recording_enabled: bool = False  # recordings still need the caller's consent on each call
    embedded_dir: str | None = None  # data dir of the embedded server (None: a temp dir)
    embedded_persist: bool = False  # embedded server: append-only file and a stable port, survives restarts
    runtime_file: str | None = None  # where `serve` publishes the embedded server URL for the CLI
    xdg_runtime_dir: str | None = None  # $XDG_RUNTIME_DIR: the runtime files live below it (None: temp dir)

    def __post_init__(self) -> None:
        if self.heartbeat_ttl <= self.heartbeat_interval:
            raise ValueError("heartbeat_ttl must exceed heartbeat_interval")
        if self.buffer_max < 1 or self.batch_max < 1:
            raise ValueError("buffer_max and batch_max must be positive")
        for name in ("retry_max", "health_interval", "supervise_interval", "supervise_hang_after",
                     "supervise_backoff_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not self.prefix or ":" in self.prefix:
            raise ValueError(f"prefix must be non-empty and without ':', got {self.prefix!r}")

    @property
    def runtime_dir(self) -> Path:
        """Where the bots' runtime files live: `<XDG_RUNTIME_DIR or temp dir>/duplexbot-<uid>`."""
        return default_runtime_dir(self.xdg_runtime_dir)

    @property
    def runtime_path(self) -> Path:
        return Path(self.runtime_file) if self.runtime_file else self.runtime_dir / "redis.json"

    @classmethod
    def from_env(cls, env: Mapping[str, str], worker_id: str | None = None,
                 data_dir: str | Path | None = None) -> "StateSettings":
        """REDIS_URL (unset: embedded Valkey), DUPLEXBOT_WORKER_ID, DUPLEXBOT_REDIS_PREFIX,
        DUPLEXBOT_RETENTION_{EVENTS,TRANSCRIPTS,RECORDINGS,AUDIT} (seconds),
        DUPLEXBOT_RECORDING (1 to allow recording after consent), DUPLEXBOT_STATE_BUFFER_MAX (events),
        DUPLEXBOT_GLOBAL_STREAM_MAXLEN (events), DUPLEXBOT_RUNTIME_FILE, XDG_RUNTIME_DIR,
        DUPLEXBOT_VALKEY_DIR (the embedded server's own dir; wins over `data_dir`).

        `data_dir`: where the embedded server keeps its data (`Settings.state_data_dir`, from
        DUPLEXBOT_DATA_DIR); None keeps it in a temp dir that dies with the process.
        A bad value raises ConfigError naming the variable."""
        kw: dict[str, Any] = {}
        if env.get("REDIS_URL"):
            kw["redis_url"] = env["REDIS_URL"]
        if worker_id or env.get("DUPLEXBOT_WORKER_ID"):
            kw["worker_id"] = worker_id or env["DUPLEXBOT_WORKER_ID"]
        if env.get("DUPLEXBOT_REDIS_PREFIX"):
            kw["prefix"] = env["DUPLEXBOT_REDIS_PREFIX"]
            if ":" in kw["prefix"]:
                raise ConfigError(f"DUPLEXBOT_REDIS_PREFIX={kw['prefix']!r}: expected a name without ':'")
        defaults = Retention()
        ret = {name: env_number(env, f"DUPLEXBOT_RETENTION_{name.upper()}", getattr(defaults, name), int,
                                1, None, "seconds")
               for name in ("events", "transcripts", "recordings", "audit")}
        kw["retention"] = Retention(**ret)
        kw["recording_enabled"] = env_flag(env, "DUPLEXBOT_RECORDING", False)
        if env.get("DUPLEXBOT_VALKEY_DIR") or data_dir is not None:
            kw["embedded_dir"] = env.get("DUPLEXBOT_VALKEY_DIR") or str(data_dir)
            kw["embedded_persist"] = True
        kw["buffer_max"] = env_number(env, "DUPLEXBOT_STATE_BUFFER_MAX", cls.buffer_max, int, 1, None, "events")
        kw["global_maxlen"] = env_number(env, "DUPLEXBOT_GLOBAL_STREAM_MAXLEN", cls.global_maxlen, int, 1, None,
                                         "events")
        if env.get("DUPLEXBOT_RUNTIME_FILE"):
            kw["runtime_file"] = env["DUPLEXBOT_RUNTIME_FILE"]
        if env.get("XDG_RUNTIME_DIR"):
            kw["xdg_runtime_dir"] = env["XDG_RUNTIME_DIR"]
        return cls(**kw)
