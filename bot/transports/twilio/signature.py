"""Webhook signatures (`X-Twilio-Signature`) and one-time per-call stream tokens (sans-IO).

Twilio signs each webhook with HMAC-SHA1 (key: the account auth token) over the full URL it
requested followed by the POST parameters sorted by name, each as name+value. The URL must be the
*public* one Twilio saw (scheme, host, path, query), never rebuilt from our Host header: behind a
tunnel or proxy the two differ, and trusting Host would let a caller pick the string we verify.

The stream token closes the gap between the webhook (signed) and the WebSocket (not signed, and
`<Stream url>` cannot carry a query string): the webhook mints a token bound to the CallSid and
passes it as a `<Parameter>`; the `start` message must carry it back. Tokens are HMAC-signed (so
any worker of the deployment can check them), expire quickly and are accepted once.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from twilio.request_validator import HMAC_SHA1, RequestValidator, get_signature_algorithm

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"


def public_url(base: str, path: str, query: str = "") -> str:
    """The URL Twilio requested: configured public base + request path (+ query string)."""
    url = base.rstrip("/") + path
    return f"{url}?{query}" if query else url


def _port_variants(url: str) -> list[str]:
    """Twilio may have signed the URL with or without an explicit default port."""
    parts = urlsplit(url)
    out = [url]
    default = 443 if parts.scheme == "https" else 80
    if parts.port is None:
        out.append(urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}")))
    elif parts.port == default:
        out.append(urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])))
    return out


def validate_signature(auth_token: str, url: str, params: Mapping[str, str | Sequence[str]] | object,
                       signature: str | None, settings_header: str | None = None) -> bool:
    """True when `signature` is Twilio's signature of (url, params). Constant-time comparison."""
    if not signature or not auth_token:
        return False
    algorithm = get_signature_algorithm(settings_header) if settings_header else HMAC_SHA1
    validator = RequestValidator(auth_token)
    ok = False
    for candidate in _port_variants(url):
        try:
            expected = validator.compute_signature(candidate, params, algorithm)
        except ValueError:  # an algorithm we do not support
            return False
        # compare every variant so the time taken does not depend on which one matched
        ok |= hmac.compare_digest(expected.encode(), signature.encode())
    return ok


def sign_request(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """What Twilio would put in X-Twilio-Signature (used by tests and the bench)."""
    return RequestValidator(auth_token).compute_signature(url, params)


# ---------------------------------------------------------------- stream tokens

class TokenError(ValueError):
    """The stream's `start` did not carry a valid, fresh, unused token for its CallSid."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StreamClaims:
    call_sid: str
    caller: str
    callee: str
    expires: float
    nonce: str


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


class StreamTokens:
    """Mint and check one-time stream tokens. `now` is passed in (wall-clock seconds)."""

    def __init__(self, key: str, ttl: float = 120.0):
        if not key:
            raise ValueError("stream tokens need a non-empty key")
        self._key = hashlib.sha256(b"duplexbot-twilio-stream\x00" + key.encode()).digest()
        self.ttl = ttl
        self._used: dict[str, float] = {}  # nonce -> expiry

    def _mac(self, call_sid: str, caller: str, callee: str, expires: int, nonce: str) -> str:
        msg = "\x00".join((call_sid, caller, callee, str(expires), nonce)).encode()
        return _b64(hmac.new(self._key, msg, hashlib.sha256).digest()[:20])

    def issue(self, call_sid: str, now: float, caller: str = "", callee: str = "") -> str:
        expires = int(now + self.ttl) + 1
        nonce = _b64(secrets.token_bytes(12))
        return f"{expires}.{nonce}.{self._mac(call_sid, caller, callee, expires, nonce)}"

    def redeem(self, token: str, call_sid: str, now: float, caller: str = "", callee: str = "") -> StreamClaims:
        """Check and consume `token` for `call_sid`.
        Raises TokenError (reason: missing/malformed/bad/expired/reused)."""
        if not token:
            raise TokenError("missing")
        parts = token.split(".")
        if len(parts) != 3 or not parts[0].isdigit() or len(token) > 200:
            raise TokenError("malformed")
        expires, nonce, mac = int(parts[0]), parts[1], parts[2]
        if not hmac.compare_digest(mac.encode(), self._mac(call_sid, caller, callee, expires, nonce).encode()):
            raise TokenError("bad")
        if now > expires:
            raise TokenError("expired")
        self._prune(now)
        if nonce in self._used:
            raise TokenError("reused")
        self._used[nonce] = expires
        return StreamClaims(call_sid, caller, callee, float(expires), nonce)

    def _prune(self, now: float) -> None:
        if len(self._used) > 64:
            for n in [n for n, exp in self._used.items() if exp < now]:
                del self._used[n]
