"""Supervisor tokens and tenancy: each token belongs to one tenant, and a supervisor sees and
touches only that tenant's calls. Tokens are compared in constant time (hashed to equal length,
every configured token compared, no early exit)."""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Mapping

from ..config import ConfigError, env_number

_NAME = re.compile(r"[^A-Za-z0-9 ._@-]")


@dataclass(frozen=True)
class SupervisorSettings:
    """tokens: (tenant, token) pairs. listen_buffer: seconds of mixed audio a listener may hold
    before its oldest audio is dropped (a slow connection never slows the call). calls_refresh:
    seconds between live-call list refreshes pushed to consoles. takeover_notice: what the bot says
    (and the call page shows) before a supervisor's voice replaces it ("" says nothing);
    hold_notice / resume_notice: what it says when a supervisor puts the caller on hold / resumes."""

    tokens: tuple[tuple[str, str], ...] = ()
    listen_buffer: float = 0.2
    calls_refresh: float = 1.0
    max_listeners_per_call: int = 8
    takeover_notice: str = "A member of our team is joining the call now."
    hold_notice: str = "Please hold for a moment."
    resume_notice: str = "Thank you for holding."

    def __post_init__(self) -> None:
        for tenant, token in self.tokens:
            if not tenant or not token or len(token) < 4:
                raise ValueError(f"supervisor token for tenant {tenant!r} is empty or shorter than 4 characters")
        if not 0.04 <= self.listen_buffer <= 5 or self.calls_refresh <= 0 or self.max_listeners_per_call < 1:
            raise ValueError("listen_buffer must be 0.04..5 s; calls_refresh and max_listeners_per_call positive")
        for name in ("takeover_notice", "hold_notice", "resume_notice"):
            if len(getattr(self, name)) > 300:
                raise ValueError(f"{name} is at most 300 characters")

    @staticmethod
    def parse_tokens(spec: str) -> tuple[tuple[str, str], ...]:
        """"tenantA:tokA,tenantB:tokB" -> (("tenantA", "tokA"), ("tenantB", "tokB"))."""
        out = []
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            tenant, sep, token = part.partition(":")
            if not sep or not tenant.strip() or not token.strip():
                raise ValueError(f"supervisor token entry {part.split(':')[0]!r}:... must be tenant:token")
            out.append((tenant.strip(), token.strip()))
        return tuple(out)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "SupervisorSettings":
        """DUPLEXBOT_SUPERVISOR_TOKENS="tenantA:tokA,tenantB:tokB", DUPLEXBOT_SUPERVISOR_LISTEN_BUFFER (s),
        DUPLEXBOT_SUPERVISOR_TAKEOVER_NOTICE, _HOLD_NOTICE, _RESUME_NOTICE (text; empty says nothing).
        A bad value raises ConfigError naming the variable."""
        try:
            tokens = cls.parse_tokens(env.get("DUPLEXBOT_SUPERVISOR_TOKENS", ""))
        except ValueError as e:
            raise ConfigError(f"DUPLEXBOT_SUPERVISOR_TOKENS: {e}") from None
        kw: dict[str, Any] = {"tokens": tokens,
                              "listen_buffer": env_number(env, "DUPLEXBOT_SUPERVISOR_LISTEN_BUFFER", cls.listen_buffer,
                                                          float, 0.04, 5, "seconds")}
        for name in ("takeover_notice", "hold_notice", "resume_notice"):
            var = f"DUPLEXBOT_SUPERVISOR_{name.upper()}"
            if var in env:
                kw[name] = env[var].strip()
                if len(kw[name]) > 300:
                    raise ConfigError(f"{var}: at most 300 characters, got {len(kw[name])}")
        try:
            return cls(**kw)
        except ValueError as e:  # a token shorter than 4 characters
            raise ConfigError(f"DUPLEXBOT_SUPERVISOR_TOKENS: {e}") from None


@dataclass(frozen=True)
class Supervisor:
    tenant: str
    name: str

    @property
    def actor(self) -> str:
        return f"{self.name}@{self.tenant}"


def clean_name(name: str | None) -> str:
    name = _NAME.sub("", (name or "").strip())[:40].strip()
    return name or "supervisor"


class Authenticator:
    def __init__(self, settings: SupervisorSettings) -> None:
        self._entries = [(tenant, hashlib.sha256(token.encode()).digest()) for tenant, token in settings.tokens]
        self.failures = 0

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    def tenant_for(self, token: str | None) -> str | None:
        digest = hashlib.sha256((token or "").encode()).digest()
        found = None
        for tenant, expected in self._entries:
            if hmac.compare_digest(digest, expected) and found is None:
                found = tenant
        if found is None:
            self.failures += 1
        return found

    def login(self, token: str | None, name: str | None = None) -> Supervisor | None:
        tenant = self.tenant_for(token)
        return None if tenant is None else Supervisor(tenant, clean_name(name))
