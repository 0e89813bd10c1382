"""Settings of the Twilio transport: one frozen dataclass, built once from the environment."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from ...audio.frame import SUPPORTED_RATES
from ...config import ConfigError, env_number

TWILIO_API_BASE = "https://api.twilio.com"


@dataclass(frozen=True)
class TwilioSettings:
    auth_token: str = ""  # TWILIO_AUTH_TOKEN: signs webhooks, basic-auth password for the REST API
    account_sid: str = ""  # TWILIO_ACCOUNT_SID
    public_base_url: str = ""  # DUPLEXBOT_PUBLIC_URL, e.g. https://bot.example.com (what Twilio dials)
    api_base: str = TWILIO_API_BASE  # TWILIO_API_BASE: overridable for tests
    caller_id: str = ""  # TWILIO_CALLER_ID: the From number of outbound calls
    call_api_token: str = ""  # DUPLEXBOT_CALL_API_TOKEN: bearer token for POST /twilio/call (empty: loopback only)
    token_ttl: float = 120.0  # seconds a stream token stays valid after the webhook
    start_timeout: float = 10.0  # seconds the WebSocket may take to send `start`
    max_streams: int = 200  # live media streams per process (TWILIO_MAX_STREAMS); beyond: refused
    # the rate bot audio is pulled from the engine at (decimated to 8 kHz here, 20 ms at a time, when
    # higher). 8 kHz, the line's rate: each sentence is resampled once, off the event loop (the
    # engine's Reply), and a 20 ms frame is then a copy, 39 us per call instead of 106 us at the TTS's
    # 24 kHz (decimating every frame and resampling its echo reference 24 -> 16 kHz), the largest
    # per-frame cost on the event loop with 40 calls up. What SIP calls do, and what the duplex
    # model's telephony training calls hear of the bot
    read_rate: int = 8000
    lead: float = 0.1  # seconds of bot audio sent ahead of real time (a clear throws it away: no barge-in cost)
    mark_every: int = 5  # outbound frames (20 ms each) between playback marks
    inbound_queue: int = 500  # the inbound mailbox's capacity (10 s of frames); beyond: oldest audio dropped, counted
    rest_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not 0.02 <= self.lead <= 1.0:
            raise ValueError(f"lead must be between 0.02 and 1.0 s, got {self.lead}")
        if self.read_rate not in SUPPORTED_RATES:
            raise ValueError(f"read_rate must be one of {SUPPORTED_RATES}, got {self.read_rate}")
        if self.mark_every < 1:
            raise ValueError("mark_every must be >= 1")
        for name in ("public_base_url", "api_base"):
            v = getattr(self, name)
            if v and not v.startswith(("http://", "https://")):
                raise ValueError(f"{name} must be an http(s) URL, got {v!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str], public_base_url: str = "", **overrides: Any) -> "TwilioSettings":
        """TWILIO_AUTH_TOKEN, TWILIO_ACCOUNT_SID, TWILIO_API_BASE, TWILIO_CALLER_ID,
        DUPLEXBOT_CALL_API_TOKEN, TWILIO_MAX_STREAMS. `public_base_url` is the bot's one public URL
        (`Settings.public_base_url`, DUPLEXBOT_PUBLIC_URL, parsed once by the root)."""
        api_base = env.get("TWILIO_API_BASE", TWILIO_API_BASE).rstrip("/") or TWILIO_API_BASE
        if not api_base.startswith(("http://", "https://")):
            raise ConfigError(f"TWILIO_API_BASE={api_base!r}: expected an http(s) URL")
        s = cls(
            auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
            account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
            public_base_url=public_base_url.rstrip("/"),
            api_base=api_base,
            caller_id=env.get("TWILIO_CALLER_ID", ""),
            call_api_token=env.get("DUPLEXBOT_CALL_API_TOKEN", ""),
            max_streams=env_number(env, "TWILIO_MAX_STREAMS", 200, int, 0, 100000, "media streams"),
        )
        return replace(s, **overrides) if overrides else s

    @property
    def media_url(self) -> str:
        """wss:// URL of the media WebSocket, derived from the public base."""
        base = self.public_base_url
        if base.startswith("https://"):
            base = "wss://" + base[len("https://"):]
        elif base.startswith("http://"):
            base = "ws://" + base[len("http://"):]
        return base + "/twilio/media"

    @property
    def voice_url(self) -> str:
        return self.public_base_url + "/twilio/voice"

    @property
    def configured(self) -> bool:
        return bool(self.auth_token and self.public_base_url)
