"""HTTP Digest authentication for SIP (RFC 3261 22.4, RFC 2617 qop=auth, RFC 8760 SHA-256)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .message import split_list

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256, "MD5-SESS": hashlib.md5,
              "SHA-256-SESS": hashlib.sha256}


@dataclass(frozen=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False


def parse_challenge(value: str) -> Challenge:
    """A WWW-Authenticate / Proxy-Authenticate value; ValueError if it is not a usable Digest challenge."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ValueError(f"unsupported authentication scheme {scheme[:20]!r}")
    params: dict[str, str] = {}
    for item in split_list(rest):
        k, _, v = item.partition("=")
        v = v.strip()
        if v.startswith('"') and v.endswith('"') and len(v) >= 2:
            v = v[1:-1]
        params[k.strip().lower()] = v
    if "realm" not in params or "nonce" not in params:
        raise ValueError("digest challenge without realm or nonce")
    alg = params.get("algorithm", "MD5").upper()
    if alg not in ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {alg[:20]!r}")
    qop = tuple(q.strip() for q in params.get("qop", "").split(",") if q.strip())
    return Challenge(params["realm"], params["nonce"], alg, qop, params.get("opaque"),
                     params.get("stale", "").lower() == "true")


def pick_challenge(values: list[str]) -> Challenge:
    """The strongest usable challenge among several (RFC 8760: prefer SHA-256)."""
    usable = []
    for v in values:
        try:
            usable.append(parse_challenge(v))
        except ValueError:
            continue
    if not usable:
        raise ValueError("no usable digest challenge")
    return max(usable, key=lambda c: c.algorithm.startswith("SHA-256"))


def _h(alg: str, text: str) -> str:
    return ALGORITHMS[alg](text.encode()).hexdigest()


def digest_response(ch: Challenge, username: str, password: str, method: str, uri: str,
                    cnonce: str = "", nc: int = 1) -> str:
    """The `response=` value."""
    alg = ch.algorithm
    ha1 = _h(alg, f"{username}:{ch.realm}:{password}")
    if alg.endswith("-SESS"):
        ha1 = _h(alg, f"{ha1}:{ch.nonce}:{cnonce}")
    ha2 = _h(alg, f"{method}:{uri}")
    if "auth" in ch.qop:
        return _h(alg, f"{ha1}:{ch.nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
    return _h(alg, f"{ha1}:{ch.nonce}:{ha2}")


def authorization(ch: Challenge, username: str, password: str, method: str, uri: str,
                  cnonce: str = "0a4f113b", nc: int = 1) -> str:
    """The Authorization / Proxy-Authorization header value answering `ch`."""
    resp = digest_response(ch, username, password, method, uri, cnonce, nc)
    parts = [f'username="{username}"', f'realm="{ch.realm}"', f'nonce="{ch.nonce}"', f'uri="{uri}"',
             f'response="{resp}"', f"algorithm={ch.algorithm}"]
    if "auth" in ch.qop:
        parts += ["qop=auth", f"nc={nc:08x}", f'cnonce="{cnonce}"']
    if ch.opaque is not None:
        parts.append(f'opaque="{ch.opaque}"')
    return "Digest " + ", ".join(parts)
