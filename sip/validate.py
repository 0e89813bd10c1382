"""Checks a user agent server runs on a parsed request before any method handling (RFC 3261 8.2).

`check_request(req, supported)` returns None for a request that may be processed, or a `Rejection`
naming the status, reason and any header fields the answer needs (Unsupported, Accept, ...).
"""
from __future__ import annotations

from dataclasses import dataclass

from .message import (
    SINGLE_HEADERS,
    Request,
    SipParseError,
    parse_cseq,
    parse_name_addr,
    parse_params,
    parse_uri,
    parse_via,
)

REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")
_MAX_SCALAR = 2**32 - 1


@dataclass(frozen=True)
class Rejection:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


def check_request(req: Request, supported: frozenset[str] = frozenset()) -> Rejection | None:
    h = req.headers
    missing = [n for n in REQUIRED if n not in h]
    if missing:
        return Rejection(400, f"Missing {', '.join(missing)}")
    for name in SINGLE_HEADERS:
        if h.count(name) > 1:
            return Rejection(400, f"Multiple {name} values")
    try:
        for v in h.get_all("Via"):
            parse_via(v)
        for name in ("From", "To"):
            parse_name_addr(h.get(name) or "")
        num, method = parse_cseq(h.get("CSeq") or "")
        for v in h.get_all("Contact"):
            if v.strip() != "*":
                na = parse_name_addr(v)
                _scalar(na.params.get("expires"), "Contact expires")
        _scalar(h.get("Expires"), "Expires")
        mf = h.get("Max-Forwards")
        if mf is not None and (not mf.strip().isdigit() or int(mf) > 255):
            return Rejection(400, "Bad Max-Forwards")
    except SipParseError as e:
        return Rejection(400, _reason(str(e)))
    if method != req.method and not (req.method == "ACK" and method == "ACK"):
        return Rejection(400, "CSeq method does not match the request line")
    scheme = req.uri.split(":", 1)[0].lower() if ":" in req.uri else ""
    if scheme and scheme.isascii() and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum() \
            and scheme not in ("sip", "sips", "tel"):
        return Rejection(416, "Unsupported URI Scheme")
    try:
        uri = parse_uri(req.uri)
    except SipParseError as e:
        return Rejection(400, _reason(str(e)))
    if uri.headers:
        return Rejection(400, "Header fields in Request-URI")
    if req.method not in ("ACK", "CANCEL"):
        unsupported = [t for t in h.get_all("Require") if t.lower() not in supported]
        if unsupported:
            return Rejection(420, "Bad Extension", (("Unsupported", ", ".join(unsupported)),))
    return None


def sdp_body(req: Request) -> bytes | None:
    """The SDP a request carries: its body when it is application/sdp, the application/sdp part of a
    multipart body (RFC 5621), b"" when there is no body, None when there is a body without SDP."""
    if not req.body:
        return b""
    ctype = req.headers.get("Content-Type") or ""
    kind = ctype.split(";")[0].strip().lower()
    if kind == "application/sdp":
        return req.body
    if kind.startswith("multipart/"):
        boundary = parse_params(ctype.partition(";")[2]).get("boundary", "").strip('"')
        if not boundary:
            return None
        for part in req.body.split(b"--" + boundary.encode())[1:]:
            if part.startswith(b"--"):
                break
            head, sep, body = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
            if not sep:
                head, sep, body = part.lstrip(b"\n").partition(b"\n\n")
            for line in head.decode("utf-8", "replace").splitlines():
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-type" and value.split(";")[0].strip().lower() == "application/sdp":
                    return body.rstrip(b"\r\n") + b"\r\n"
    return None


def check_invite_body(req: Request) -> Rejection | None:
    """An INVITE we answer must carry SDP (or nothing) and let us answer with SDP."""
    if sdp_body(req) is None:
        return Rejection(415, "Unsupported Media Type", (("Accept", "application/sdp"),))
    accepts = [a.split(";")[0].strip().lower() for a in req.headers.get_all("Accept")]
    if "Accept" in req.headers and accepts and not any(a in ("application/sdp", "application/*", "*/*")
                                                       for a in accepts):
        return Rejection(406, "Not Acceptable", (("Accept", "application/sdp"),))
    return None


def _scalar(value: str | None, what: str) -> None:
    if value is None:
        return
    v = value.strip()
    if not v.isdigit() or len(v) > 10 or int(v) > _MAX_SCALAR:
        raise SipParseError(f"bad {what} {v[:20]!r}")


def _reason(text: str) -> str:
    clean = "".join(c if 32 <= ord(c) < 127 and c not in "\r\n" else "?" for c in text)
    return ("Bad Request: " + clean)[:120]


def malformed_answer(data: bytes, err: SipParseError, to_tag: str) -> bytes | None:
    """400/505 for a request that failed to parse, when the fields a response needs survived."""
    from .dialog import make_response

    h = err.headers
    if h is None or data.lstrip(b"\r\n").startswith(b"SIP/"):
        return None
    if not all(n in h for n in REQUIRED):
        return None
    fake = Request("INVALID", "sip:invalid", h)
    reason = "Version Not Supported" if err.status == 505 else _reason(str(err))
    return bytes(make_response(fake, err.status, reason, to_tag=to_tag))
