"""SIP messages (RFC 3261 section 7 and 25): parse and serialize requests and responses.

Sans-IO: `parse_message(data)` turns one datagram (or one framed stream message) into a frozen
`Request` or `Response`; `bytes(msg)` writes it back with a correct Content-Length. Header names are
case-insensitive and compact forms are expanded; folded lines are unfolded; comma-separated values
are split outside quotes and angle brackets. Anything malformed raises `SipParseError` (a
ValueError) that says what is wrong; `.headers` carries whatever headers could be read so the
caller can still answer 400 when Via/From/To/Call-ID/CSeq survived.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache

SIP_VERSION = "SIP/2.0"
MAX_MESSAGE = 65535
MAX_HEADERS = 128      # header lines in one message; kamailio's parser stops near here too. A flood of
                       # huge messages then costs a bounded parse each, answered 400 or dropped

COMPACT = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact", "k": "Supported",
    "l": "Content-Length", "m": "Contact", "o": "Event", "r": "Refer-To", "s": "Subject", "t": "To",
    "u": "Allow-Events", "v": "Via", "x": "Session-Expires", "y": "Identity",
}
_CANONICAL = {n.lower(): n for n in (
    "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards", "Content-Length", "Content-Type",
    "Route", "Record-Route", "Allow", "Supported", "Require", "Proxy-Require", "Unsupported", "Accept",
    "WWW-Authenticate", "Authorization", "Proxy-Authenticate", "Proxy-Authorization", "Expires",
    "Min-Expires", "Session-Expires", "Min-SE", "Retry-After", "User-Agent", "Server", "Event",
    "Subscription-State", "Refer-To", "Referred-By", "Content-Disposition", "Content-Encoding",
    "Allow-Events", "Subject", "Date", "Timestamp", "Warning", "Reason", "RSeq", "RAck", "Identity",
    "Accept-Contact", "Reject-Contact", "Request-Disposition", "Replaces", "Organization")}
# Header fields whose values may be comma-separated lists (RFC 3261 7.3.1).
_LIST_HEADERS = frozenset(h.lower() for h in (
    "Via", "Contact", "Route", "Record-Route", "Allow", "Supported", "Require", "Proxy-Require",
    "Unsupported", "Accept", "Accept-Encoding", "Accept-Language", "Allow-Events", "Content-Encoding",
    "In-Reply-To", "Warning", "Reason"))
# Header fields that must appear at most once (checked by `sip.validate.check_request`).
SINGLE_HEADERS = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type")

_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*$")
_HOST = re.compile(r"^[A-Za-z0-9\-.:]+$")
_LWS_FOLD = re.compile(rb"\r?\n[ \t]+")


class SipParseError(ValueError):
    """The peer sent a malformed message. `headers` holds what could be read (may be empty)."""

    def __init__(self, message: str, headers: "Headers | None" = None, status: int = 400):
        super().__init__(message)
        self.headers = headers
        self.status = status


@lru_cache(maxsize=1024)
def canonical_name(name: str) -> str:
    low = name.strip().lower()
    if len(low) == 1 and low in COMPACT:
        return COMPACT[low]
    if low in _CANONICAL:
        return _CANONICAL[low]
    return "-".join(p.capitalize() for p in low.split("-"))


@dataclass(frozen=True)
class Headers:
    """An ordered multi-map of header fields: (canonical name, raw value) pairs."""

    items: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, *pairs: tuple[str, str]) -> "Headers":
        return cls(tuple((canonical_name(n), str(v)) for n, v in pairs))

    def get(self, name: str, default: str | None = None) -> str | None:
        key = canonical_name(name)
        for n, v in self.items:
            if n == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of `name`; list headers are split at top-level commas."""
        key = canonical_name(name)
        out: list[str] = []
        for n, v in self.items:
            if n == key:
                out.extend(split_list(v) if key.lower() in _LIST_HEADERS else [v])
        return out

    def count(self, name: str) -> int:
        key = canonical_name(name)
        return sum(1 for n, _ in self.items if n == key)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def set(self, name: str, value: str) -> "Headers":
        """A copy with every `name` field replaced by one (kept in place of the first)."""
        key = canonical_name(name)
        out, done = [], False
        for n, v in self.items:
            if n == key:
                if not done:
                    out.append((key, value))
                    done = True
            else:
                out.append((n, v))
        if not done:
            out.append((key, value))
        return Headers(tuple(out))

    def add(self, name: str, value: str) -> "Headers":
        return Headers(self.items + ((canonical_name(name), value),))

    def remove(self, name: str) -> "Headers":
        key = canonical_name(name)
        return Headers(tuple((n, v) for n, v in self.items if n != key))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)


class _DialogFields:
    """The header fields every request and response is matched by."""
    headers: Headers

    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        return parse_cseq(self.headers.get("CSeq") or "")


@dataclass(frozen=True)
class Request(_DialogFields):
    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    def __bytes__(self) -> bytes:
        return _serialize(f"{self.method} {self.uri} {self.version}", self.headers, self.body)


@dataclass(frozen=True)
class Response(_DialogFields):
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    def __bytes__(self) -> bytes:
        return _serialize(f"{self.version} {self.status} {self.reason}", self.headers, self.body)


Message = Request | Response


def _serialize(start: str, headers: Headers, body: bytes) -> bytes:
    lines = [start]
    for n, v in headers.items:
        if n != "Content-Length":
            lines.append(f"{n}: {v}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


# ----------------------------------------------------------------------------------------------
# Parsing

def _split_head(data: bytes) -> tuple[bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = data.find(sep)
        if i >= 0:
            return data[:i], data[i + len(sep):]
    raise SipParseError("no blank line after the header fields")


def _parse_header_lines(head: bytes) -> tuple[str, Headers]:
    text = _LWS_FOLD.sub(b" ", head).decode("utf-8", "replace")
    lines = text.replace("\r\n", "\n").split("\n")
    if len(lines) > MAX_HEADERS + 1:
        raise SipParseError(f"more than {MAX_HEADERS} header lines")
    start = lines[0]
    items: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or not _TOKEN.match(name.strip()):
            raise SipParseError(f"malformed header line {line[:60]!r}", Headers(tuple(items)))
        items.append((canonical_name(name), value.strip(" \t")))
    return start, Headers(tuple(items))


def parse_message(data: bytes, stream: bool = False) -> Message:
    """Parse one message. For datagrams, octets after Content-Length are ignored (RFC 3261 18.3)."""
    msg, _ = parse_one(data, stream=stream)
    return msg


def parse_one(data: bytes, stream: bool = False) -> tuple[Message, int]:
    """Parse the first message in `data`; returns it and the number of octets it used."""
    if len(data) > MAX_MESSAGE:
        raise SipParseError(f"message of {len(data)} bytes is larger than {MAX_MESSAGE}")
    # RFC 3261 7.5: ignore leading CRLFs (keepalives)
    offset = len(data) - len(data.lstrip(b"\r\n"))
    head, rest = _split_head(data[offset:])
    start, headers = _parse_header_lines(head)
    consumed = offset + len(head) + (len(data) - offset - len(head) - len(rest))
    cls = headers.get_all("Content-Length")
    if len(cls) > 1:
        raise SipParseError("more than one Content-Length", headers)
    if cls:
        if not cls[0].isdigit() or len(cls[0]) > 9:
            raise SipParseError(f"bad Content-Length {cls[0][:20]!r}", headers)
        length = int(cls[0])
        if length > len(rest):
            raise SipParseError(f"Content-Length {length} is larger than the {len(rest)} body octets", headers)
    else:
        length = 0 if stream else len(rest)
    body = rest[:length]
    consumed += length
    return _parse_start(start, headers, body), consumed


def _parse_start(start: str, headers: Headers, body: bytes) -> Message:
    if start.startswith("SIP/"):
        parts = start.split(" ", 2)
        if len(parts) < 2 or parts[0] != SIP_VERSION:
            raise SipParseError(f"bad status line {start[:60]!r}", headers)
        code = parts[1]
        if not (len(code) == 3 and code.isdigit() and 100 <= int(code) <= 699):
            raise SipParseError(f"bad status code {code[:20]!r}", headers)
        return Response(int(code), parts[2] if len(parts) > 2 else "", headers, body)
    parts = start.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError(f"bad request line {start[:80]!r}", headers)
    method, uri, version = parts
    if not _TOKEN.match(method):
        raise SipParseError(f"bad method {method[:30]!r}", headers)
    if not version.upper().startswith("SIP/"):
        raise SipParseError(f"bad version {version[:20]!r}", headers)
    if version.upper() != SIP_VERSION:
        raise SipParseError(f"SIP version {version[:20]!r} not supported", headers, status=505)
    return Request(method, uri, headers, body)


def frame_stream(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Split one message off a stream buffer (TCP). Returns (message or None if incomplete, rest).

    Raises SipParseError when the stream cannot be framed (the connection should be closed)."""
    stripped = buffer.lstrip(b"\r\n")
    i = stripped.find(b"\r\n\r\n")
    if i < 0:
        if len(stripped) > MAX_MESSAGE:
            raise SipParseError("header section too long")
        return None, stripped
    head_end = i + 4
    m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(-?\d+)[ \t]*\r?$", stripped[:i])
    length = int(m.group(1)) if m else 0
    if length < 0 or length > MAX_MESSAGE:
        raise SipParseError(f"bad Content-Length {length}")
    if len(stripped) < head_end + length:
        return None, stripped
    return stripped[:head_end + length], stripped[head_end + length:]


# ----------------------------------------------------------------------------------------------
# Header values

def split_list(value: str) -> list[str]:
    """Split at commas outside quotes and angle brackets; empty elements are dropped."""
    if "," not in value:
        v = value.strip()
        return [v] if v else []
    if '"' not in value and "<" not in value:
        return [v for v in (x.strip() for x in value.split(",")) if v]
    out: list[str] = []
    cur: list[str] = []
    quoted, angle, esc = False, False, False
    for ch in value:
        if esc:
            esc = False
        elif quoted and ch == "\\":
            esc = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            angle = True
        elif not quoted and ch == ">":
            angle = False
        elif ch == "," and not quoted and not angle:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return [v for v in out if v]


def parse_params(text: str) -> dict[str, str]:
    """`;a=b;c` (leading `;` optional, LWS around `=` tolerated) -> {"a": "b", "c": ""}."""
    params: dict[str, str] = {}
    for part in _split_outside_quotes(text, ";"):
        part = part.strip()
        if not part:
            continue
        k, _, v = part.partition("=")
        params[k.strip().lower()] = v.strip()
    return params


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    if '"' not in text:
        return text.split(sep)
    out: list[str] = []
    cur: list[str] = []
    quoted, esc = False, False
    for ch in text:
        if esc:
            esc = False
        elif quoted and ch == "\\":
            esc = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if quoted:
        raise SipParseError(f"unterminated quoted string in {text[:60]!r}")
    out.append("".join(cur))
    return out


def format_params(params: dict[str, str]) -> str:
    return "".join(f";{k}={v}" if v != "" else f";{k}" for k, v in params.items())


def parse_cseq(value: str) -> tuple[int, str]:
    parts = value.split()
    if len(parts) != 2 or not parts[0].isdigit() or len(parts[0]) > 10 or int(parts[0]) >= 2**31:
        raise SipParseError(f"bad CSeq {value[:40]!r}")
    if not _TOKEN.match(parts[1]):
        raise SipParseError(f"bad CSeq method {parts[1][:30]!r}")
    return int(parts[0]), parts[1]


@dataclass(frozen=True)
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def branch(self) -> str:
        return self.params.get("branch", "")

    def __str__(self) -> str:
        hp = f"[{self.host}]" if ":" in self.host else self.host
        if self.port:
            hp += f":{self.port}"
        return f"SIP/2.0/{self.transport} {hp}{format_params(self.params)}"

    def with_params(self, **kw: str) -> "Via":
        return replace(self, params={**self.params, **kw})


_VIA = re.compile(r"^SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)"
                  r"(?:\s*:\s*(\d{1,5}))?\s*((?:;.*)?)$", re.S)


def parse_via(value: str) -> Via:
    m = _VIA.match(value.strip())
    if not m:
        raise SipParseError(f"bad Via {value[:60]!r}")
    host = m.group(2).strip("[]")
    port = int(m.group(3)) if m.group(3) else None
    if port is not None and not 0 < port < 65536:
        raise SipParseError(f"bad Via port {port}")
    params = parse_params(m.group(4))
    if any(not k or not _TOKEN.match(k) for k in params):
        raise SipParseError(f"bad Via parameters {value[:60]!r}")
    return Via(m.group(1).upper(), host, port, params)


@dataclass(frozen=True)
class Uri:
    scheme: str
    user: str = ""
    host: str = ""
    port: int | None = None
    params: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    headers: str = ""
    password: str = ""

    def __str__(self) -> str:
        if self.scheme not in ("sip", "sips", "tel"):
            return f"{self.scheme}:{self.user}"
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        userinfo = ""
        if self.user:
            userinfo = self.user + (f":{self.password}" if self.password else "") + "@"
        hp = f"[{self.host}]" if ":" in self.host else self.host
        if self.port:
            hp += f":{self.port}"
        s = f"{self.scheme}:{userinfo}{hp}{format_params(self.params)}"
        return s + (f"?{self.headers}" if self.headers else "")


def parse_uri(text: str) -> Uri:
    text = text.strip()
    scheme, sep, rest = text.partition(":")
    if not sep or not _SCHEME.match(scheme):
        raise SipParseError(f"bad URI {text[:60]!r}")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        if scheme == "tel":
            num, _, p = rest.partition(";")
            return Uri("tel", user=num, params=parse_params(p))
        return Uri(scheme, user=rest)
    if any(c in rest for c in " \t<>\""):
        raise SipParseError(f"bad character in URI {text[:60]!r}")
    user = password = ""
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        user, _, password = userinfo.partition(":")
    rest, _, hdrs = rest.partition("?")
    hostport, _, params = rest.partition(";")
    if hostport.startswith("["):
        host, _, portpart = hostport[1:].partition("]")
        portpart = portpart.lstrip(":")
    else:
        host, _, portpart = hostport.partition(":")
    if not host or not _HOST.match(host):
        raise SipParseError(f"bad host in URI {text[:60]!r}")
    port = None
    if portpart:
        if not portpart.isdigit() or not 0 < int(portpart) < 65536:
            raise SipParseError(f"bad port in URI {text[:60]!r}")
        port = int(portpart)
    return Uri(scheme, user, host.lower(), port, parse_params(params), hdrs, password)


def unescape(text: str) -> str:
    """Decode %HH escapes (RFC 3261 25.1); a % not followed by two hex digits is kept literally."""
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


@dataclass(frozen=True)
class NameAddr:
    display: str
    uri: str
    params: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    bracketed: bool = True

    @property
    def tag(self) -> str:
        return self.params.get("tag", "")

    def with_tag(self, tag: str) -> "NameAddr":
        return replace(self, params={**self.params, "tag": tag})

    def __str__(self) -> str:
        disp = f'"{self.display}" ' if self.display else ""
        return f"{disp}<{self.uri}>{format_params(self.params)}"


_DISPLAY_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~ \t]*$")


def parse_name_addr(value: str) -> NameAddr:
    """From/To/Contact/Refer-To/Route value: name-addr or addr-spec, with parameters."""
    v = value.strip()
    display = ""
    if v.startswith('"'):
        i, esc = 1, False
        while i < len(v):
            if esc:
                esc = False
            elif v[i] == "\\":
                esc = True
            elif v[i] == '"':
                break
            i += 1
        else:
            raise SipParseError(f"unterminated quoted display name in {value[:60]!r}")
        display = re.sub(r"\\(.)", r"\1", v[1:i])
        v = v[i + 1:].lstrip()
        if not v.startswith("<"):
            raise SipParseError(f"quoted display name without <uri> in {value[:60]!r}")
    if "<" in v.split(";", 1)[0] or v.startswith("<"):
        lt = v.index("<")
        if not display:
            display = v[:lt].strip()
            if not _DISPLAY_TOKEN.match(display):
                raise SipParseError(f"bad unquoted display name {display[:40]!r}")
        gt = v.find(">", lt)
        if gt < 0:
            raise SipParseError(f"missing '>' in {value[:60]!r}")
        uri = v[lt + 1:gt]
        if uri != uri.strip():
            raise SipParseError(f"whitespace inside <> in {value[:60]!r}")
        parse_uri(uri) if uri.split(":", 1)[0].lower() in ("sip", "sips") else None
        return NameAddr(display, uri, parse_params(v[gt + 1:]), True)
    if '"' in v:
        raise SipParseError(f"unbalanced quote in {value[:60]!r}")
    # addr-spec: parameters after the URI belong to the header (RFC 3261 20.10)
    uri, _, params = v.partition(";")
    uri = uri.strip()
    if any(c in uri for c in "?, "):
        raise SipParseError(f"addr-spec with reserved characters must be in <>: {value[:60]!r}")
    if uri.split(":", 1)[0].lower() in ("sip", "sips"):
        parse_uri(uri)
    elif ":" not in uri:
        raise SipParseError(f"bad address {value[:60]!r}")
    return NameAddr("", uri.strip(), parse_params(params), False)
