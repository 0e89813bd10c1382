"""SDP (RFC 4566) parsing/writing and the offer/answer model (RFC 3264) for one audio stream.

We speak PCMU (0), PCMA (8) and telephone-event (RFC 4733, dynamic type). `answer(offer, ...)`
picks the first offered codec we support, keeps the offerer's telephone-event payload type and
mirrors the direction (hold = sendonly/inactive or c=0.0.0.0). `offer(...)` builds our own offer
for outbound calls and `accept_answer(offer, answer)` reads the peer's answer to it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

STATIC_CODECS = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
SUPPORTED = ("PCMU", "PCMA")            # the default; "OPUS" is optional (sip/opus.py)
CLOCKS = {"PCMU": 8000, "PCMA": 8000, "OPUS": 48000}
OPUS_PT = 111
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_MIRROR = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


class SdpError(ValueError):
    """Malformed SDP or no acceptable media (answer 488)."""


@dataclass(frozen=True)
class Media:
    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict, hash=False, compare=False)
    fmtp: dict[int, str] = field(default_factory=dict, hash=False, compare=False)
    direction: str = "sendrecv"
    connection: str | None = None
    ptime: int | None = None
    other: tuple[str, ...] = ()

    def codec(self, pt: int) -> tuple[str, int] | None:
        if pt in self.rtpmap:
            return self.rtpmap[pt]
        return STATIC_CODECS.get(pt)


@dataclass(frozen=True)
class SessionDescription:
    origin: str
    connection: str | None
    media: tuple[Media, ...]
    session_name: str = "-"
    version: int = 0
    session_direction: str | None = None

    def audio(self) -> Media | None:
        return next((m for m in self.media if m.kind == "audio" and m.port != 0), None)

    def __bytes__(self) -> bytes:
        lines = ["v=0", f"o={self.origin}", f"s={self.session_name}"]
        if self.connection:
            lines.append(f"c=IN IP4 {self.connection}")
        lines.append("t=0 0")
        for m in self.media:
            lines.append(f"m={m.kind} {m.port} {m.proto} {' '.join(m.formats)}")
            if m.connection and m.connection != self.connection:
                lines.append(f"c=IN IP4 {m.connection}")
            for f in m.formats:
                if f.isdigit() and int(f) in m.rtpmap:
                    name, rate = m.rtpmap[int(f)]
                    lines.append(f"a=rtpmap:{f} {name}/{rate}" + ("/2" if name.lower() == "opus" else ""))
                if f.isdigit() and int(f) in m.fmtp:
                    lines.append(f"a=fmtp:{f} {m.fmtp[int(f)]}")
            if m.ptime:
                lines.append(f"a=ptime:{m.ptime}")
            if m.port:
                lines.append(f"a={m.direction}")
        return ("\r\n".join(lines) + "\r\n").encode()


def parse_sdp(data: bytes) -> SessionDescription:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SdpError(f"SDP is not UTF-8: {e}") from None
    origin, conn, name, sess_dir = "", None, "-", None
    media: list[dict] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"bad SDP line {line[:40]!r}")
        key, val = line[0], line[2:]
        cur = media[-1] if media else None
        if key == "o":
            origin = val
        elif key == "s":
            name = val
        elif key == "c":
            parts = val.split()
            if len(parts) != 3 or parts[0] != "IN":
                raise SdpError(f"bad c= line {val[:40]!r}")
            addr = parts[2].split("/")[0]
            if cur is None:
                conn = addr
            else:
                cur["connection"] = addr
        elif key == "m":
            parts = val.split()
            if len(parts) < 3 or not parts[1].split("/")[0].isdigit():
                raise SdpError(f"bad m= line {val[:40]!r}")
            port = int(parts[1].split("/")[0])
            if port > 65535:
                raise SdpError(f"bad m= port {port}")
            media.append(dict(kind=parts[0], port=port, proto=parts[2], formats=tuple(parts[3:]), rtpmap={},
                              fmtp={}, direction=None, connection=None, ptime=None, other=[]))
        elif key == "a":
            attr, _, rest = val.partition(":")
            if attr in DIRECTIONS:
                if cur is None:
                    sess_dir = attr
                else:
                    cur["direction"] = attr
            elif cur is None:
                continue
            elif attr == "rtpmap":
                pt, _, enc = rest.partition(" ")
                encname, _, clock = enc.partition("/")
                if pt.isdigit() and clock.split("/")[0].isdigit():
                    cur["rtpmap"][int(pt)] = (encname, int(clock.split("/")[0]))
            elif attr == "fmtp":
                pt, _, params = rest.partition(" ")
                if pt.isdigit():
                    cur["fmtp"][int(pt)] = params
            elif attr == "ptime" and rest.strip().isdigit():
                cur["ptime"] = int(rest)
            else:
                cur["other"].append(val)
    if not origin and not media:
        raise SdpError("SDP without o= or m= lines")
    out = []
    for m in media:
        m["direction"] = m["direction"] or sess_dir or "sendrecv"
        m["connection"] = m["connection"] or conn
        m["other"] = tuple(m["other"])
        out.append(Media(**m))
    return SessionDescription(origin, conn, tuple(out), name, 0, sess_dir)


@dataclass(frozen=True)
class Negotiated:
    """What both sides agreed for the audio stream."""
    remote_addr: tuple[str, int] | None   # None while the peer is on hold (c=0.0.0.0 / port 0)
    payload_type: int
    codec: str
    dtmf_payload_type: int | None
    direction: str                         # our direction: we send if it has "send"
    ptime: int = 20

    @property
    def we_send(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @property
    def they_send(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")


def _remote(m: Media) -> tuple[str, int] | None:
    if not m.connection or m.connection == "0.0.0.0" or m.port == 0:
        return None
    return (m.connection, m.port)


def _pick_codec(m: Media, codecs: tuple[str, ...]) -> tuple[int, str] | None:
    """The first offered format we support at its nominal clock: (payload type, upper-case codec name)."""
    for f in m.formats:
        if f.isdigit():
            c = m.codec(int(f))
            if c and c[0].upper() in codecs and CLOCKS.get(c[0].upper()) == c[1]:
                return int(f), c[0].upper()
    return None


def answer(offer: SessionDescription, local_ip: str, local_port: int, session_id: int, version: int = 0,
           codecs: tuple[str, ...] = SUPPORTED) -> tuple[SessionDescription, Negotiated]:
    """Answer an offer: one audio stream accepted, every other stream rejected with port 0."""
    chosen: Negotiated | None = None
    answered = []
    for m in offer.media:
        if chosen is not None or m.kind != "audio" or m.port == 0 or "RTP/AVP" not in m.proto.upper():
            answered.append(Media(m.kind, 0, m.proto, m.formats[:1] or ("0",)))
            continue
        picked = _pick_codec(m, codecs)
        if picked is None:
            answered.append(Media(m.kind, 0, m.proto, m.formats[:1] or ("0",)))
            continue
        pt, codec = picked
        clock = CLOCKS[codec]
        dtmf = next((p for p, (n, r) in m.rtpmap.items() if n.lower() == "telephone-event" and r == clock
                     and str(p) in m.formats), None)
        direction = "inactive" if m.connection == "0.0.0.0" and m.direction == "sendrecv" else m.direction
        ours = _MIRROR[direction]
        chosen = Negotiated(_remote(m), pt, codec, dtmf, ours, m.ptime or 20)
        formats = (str(pt),) + ((str(dtmf),) if dtmf is not None else ())
        rtpmap = {pt: ("opus" if codec == "OPUS" else codec, clock)}
        fmtp = {}
        if codec == "OPUS" and pt in m.fmtp:
            fmtp[pt] = m.fmtp[pt]
        if dtmf is not None:
            rtpmap[dtmf] = ("telephone-event", clock)
            fmtp[dtmf] = "0-16"
        answered.append(Media("audio", local_port, "RTP/AVP", formats, rtpmap, fmtp, ours, local_ip, 20))
    if chosen is None:
        raise SdpError("no acceptable audio stream in the offer")
    desc = SessionDescription(f"duplexbot {session_id} {version} IN IP4 {local_ip}", local_ip, tuple(answered),
                              "duplexbot", version)
    return desc, chosen


def offer(local_ip: str, local_port: int, session_id: int, version: int = 0, direction: str = "sendrecv",
          dtmf_pt: int = 101, codecs: tuple[str, ...] = SUPPORTED) -> SessionDescription:
    formats, rtpmap = [], {}
    for c in codecs:
        pt = {"PCMU": 0, "PCMA": 8, "OPUS": OPUS_PT}[c]
        formats.append(str(pt))
        rtpmap[pt] = ("opus" if c == "OPUS" else c, CLOCKS[c])
    formats.append(str(dtmf_pt))
    rtpmap[dtmf_pt] = ("telephone-event", 8000)
    m = Media("audio", local_port, "RTP/AVP", tuple(formats), rtpmap, {dtmf_pt: "0-16"}, direction, local_ip, 20)
    return SessionDescription(f"duplexbot {session_id} {version} IN IP4 {local_ip}", local_ip, (m,), "duplexbot",
                              version)


def accept_answer(our_offer: SessionDescription, ans: SessionDescription) -> Negotiated:
    m = ans.audio()
    if m is None:
        raise SdpError("the answer rejected the audio stream")
    ours = our_offer.audio()
    offered = {n.upper() for n, _ in (ours.rtpmap.values() if ours else ())} | set(SUPPORTED)
    for f in m.formats:
        if f.isdigit() and (c := m.codec(int(f))) and c[0].upper() in offered and c[0].upper() in CLOCKS:
            dtmf = next((p for p, (n, _) in m.rtpmap.items() if n.lower() == "telephone-event"), None)
            direction = _MIRROR[m.direction]
            if ours is not None and ours.direction != "sendrecv":
                direction = ours.direction
            return Negotiated(_remote(m), int(f), c[0].upper(), dtmf, direction, m.ptime or 20)
    raise SdpError("the answer chose no codec we offered")


def with_version(desc: SessionDescription, version: int) -> SessionDescription:
    parts = desc.origin.split()
    if len(parts) == 6:
        parts[2] = str(version)
    return replace(desc, origin=" ".join(parts), version=version)
