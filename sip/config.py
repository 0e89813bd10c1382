"""SIP bridge settings from the environment (DUPLEXBOT_SIP_*), built once at start-up."""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, replace
from typing import Mapping, TypeVar

from .media import MediaSettings
from .registration import RegistrationSettings
from .server import ServerSettings
from .ua import UaSettings

DEFAULT_PORT = 5060
_Num = TypeVar("_Num", int, float)


@dataclass(frozen=True)
class SipSettings:
    enabled: bool = False
    server: ServerSettings = ServerSettings()
    registration: RegistrationSettings | None = None
    registrar_addr: tuple[str, int] | None = None
    keepalive: float = 30.0          # OPTIONS to the registrar every this many seconds (0: off)
    call_token: str = ""             # DUPLEXBOT_SIP_CALL_TOKEN: bearer token of the outbound-call API

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "SipSettings":
        """DUPLEXBOT_SIP=1 enables the listener. DUPLEXBOT_SIP_PORT (0/unset: 5060), _BIND, _ADVERTISE,
        _ALLOW (CIDRs that may call us), _CODECS (PCMU,PCMA[,OPUS]),
        _MAX_CPS, _RETRY_AFTER, _RTP_TIMEOUT, _RTP_PORTS (lo-hi), _SESSION_EXPIRES, and for
        a trunk: _REGISTRAR (host[:port]), _AOR, _USER, _PASSWORD, _REGISTER_EXPIRES, _KEEPALIVE (s);
        _CALL_TOKEN (bearer token of the HTTP outbound-call API). A bad value raises ValueError
        naming the variable (the bot's root turns it into its ConfigError)."""
        def get(name: str, default: str = "") -> str:
            return (env.get(f"DUPLEXBOT_SIP_{name}") or default).strip()

        def num(name: str, default: _Num, cast: type[_Num], lo: float = 0, hi: float = 1e9) -> _Num:
            raw = get(name)
            if not raw:
                return default
            try:
                v = cast(raw)
            except ValueError:
                raise ValueError(f"DUPLEXBOT_SIP_{name}={raw!r} is not a valid {cast.__name__}") from None
            if not lo <= v <= hi:
                raise ValueError(f"DUPLEXBOT_SIP_{name}={raw!r} is out of range [{lo}, {hi}]")
            return v

        if get("MAX_CALLS"):
            raise ValueError("DUPLEXBOT_SIP_MAX_CALLS is gone: DUPLEXBOT_MAX_CALLS caps the calls of every "
                             "transport together (see docs/sip.md, 'Floods and admission')")
        enabled = (env.get("DUPLEXBOT_SIP") or "0").strip().lower() in ("1", "true", "on", "yes")
        port = num("PORT", 0, int, 0, 65535) or DEFAULT_PORT
        bind = get("BIND", "0.0.0.0")
        advertise = get("ADVERTISE") or (bind if bind != "0.0.0.0" else primary_ip())
        rtp = get("RTP_PORTS", "20000-40000")
        bad_rtp = ValueError(f"DUPLEXBOT_SIP_RTP_PORTS={rtp!r}: expected lo-hi with 1024 <= lo < hi <= 65535, "
                             "e.g. 20000-40000")
        try:
            lo, hi = (int(x) for x in rtp.split("-"))
        except ValueError:
            raise bad_rtp from None
        if not 1024 <= lo < hi <= 65535:
            raise bad_rtp
        allow = tuple(n.strip() for n in get("ALLOW").split(",") if n.strip())
        for n in allow:
            try:
                ipaddress.ip_network(n, strict=False)
            except ValueError:
                raise ValueError(f"DUPLEXBOT_SIP_ALLOW: {n!r} is not an address or network") from None
        codecs = tuple(c.strip().upper() for c in get("CODECS", "PCMU,PCMA").split(",") if c.strip())
        if not codecs or any(c not in ("PCMU", "PCMA", "OPUS") for c in codecs):
            raise ValueError(f"DUPLEXBOT_SIP_CODECS={get('CODECS')!r}: choose from PCMU, PCMA, OPUS")
        ua = replace(UaSettings(), allow=allow, codecs=codecs, max_cps=num("MAX_CPS", 100.0, float, 0.1, 10000),
                     retry_after=num("RETRY_AFTER", 5, int, 1, 3600),
                     session_expires=num("SESSION_EXPIRES", 1800, int, 90, 86400))
        media = replace(MediaSettings(), rtp_timeout=num("RTP_TIMEOUT", 30.0, float, 0, 3600))
        server = ServerSettings(bind=bind, port=port, advertise=advertise, rtp_ports=(lo, hi), ua=ua, media=media)
        registration = addr = None
        if get("REGISTRAR"):
            host, _, p = get("REGISTRAR").partition(":")
            if not host or (p and not (p.isdigit() and 0 < int(p) <= 65535)):
                raise ValueError(f"DUPLEXBOT_SIP_REGISTRAR={get('REGISTRAR')!r}: expected host[:port]")
            addr = (host, int(p) if p else 5060)
            user = get("USER", "duplexbot")
            registration = RegistrationSettings(registrar=f"sip:{get('REGISTRAR')}",
                                                aor=get("AOR") or f"sip:{user}@{host}", username=user,
                                                password=get("PASSWORD"),
                                                expires=num("REGISTER_EXPIRES", 3600, int, 60, 86400))
        return cls(enabled, server, registration, addr, num("KEEPALIVE", 30.0, float, 0, 3600), get("CALL_TOKEN"))


def primary_ip() -> str:
    """The address other hosts reach us on (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"
