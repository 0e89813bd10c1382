"""Twilio Media Streams WebSocket messages, as Twilio documents them (sans-IO).

Inbound (Twilio -> us): `connected`, `start`, `media`, `dtmf`, `mark`, `stop`.
Outbound (us -> Twilio, bidirectional `<Connect><Stream>` only): `media`, `mark`, `clear`.

`parse_inbound(text)` turns one WebSocket text frame into a frozen message or raises `CodecError`
(a ValueError) whose `reason` is a short label the receiver counts drops by. Every message type
also has `to_dict()` producing Twilio's exact field layout, so the same module drives a test
client that speaks Twilio's side of the protocol byte for byte.

Wire details worth knowing: Twilio sends `sequenceNumber`, `media.chunk` and `media.timestamp`
as *strings* of decimal digits; `mediaFormat.sampleRate`/`channels` are numbers; the payload is
base64 of raw mu-law bytes (8 kHz mono, 160 bytes per 20 ms).
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from sip.dtmf import DIGITS as DTMF_DIGITS

MAX_FRAME_BYTES = 64 * 1024  # bigger frames are dropped before parsing
MULAW_ENCODING = "audio/x-mulaw"


class CodecError(ValueError):
    """A message the remote peer (Twilio, or whoever speaks for it) got wrong. Retrying cannot help."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# ---------------------------------------------------------------- inbound (Twilio -> us)

@dataclass(frozen=True)
class Connected:
    protocol: str = "Call"
    version: str = "1.0.0"

    def to_dict(self) -> dict[str, Any]:
        return {"event": "connected", "protocol": self.protocol, "version": self.version}


@dataclass(frozen=True)
class MediaFormat:
    encoding: str = MULAW_ENCODING
    sample_rate: int = 8000
    channels: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "sampleRate": self.sample_rate, "channels": self.channels}


@dataclass(frozen=True)
class Start:
    sequence_number: int
    stream_sid: str
    account_sid: str
    call_sid: str
    tracks: tuple[str, ...] = ("inbound",)
    media_format: MediaFormat = field(default_factory=MediaFormat)
    custom_parameters: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": "start",
            "sequenceNumber": str(self.sequence_number),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": list(self.tracks),
                "mediaFormat": self.media_format.to_dict(),
                "customParameters": dict(self.custom_parameters),
            },
            "streamSid": self.stream_sid,
        }


@dataclass(frozen=True)
class Media:
    """Inbound audio: `payload` is raw mu-law bytes (already base64-decoded)."""
    sequence_number: int
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": "media",
            "sequenceNumber": str(self.sequence_number),
            "media": {
                "track": self.track,
                "chunk": str(self.chunk),
                "timestamp": str(self.timestamp_ms),
                "payload": base64.b64encode(self.payload).decode("ascii"),
            },
            "streamSid": self.stream_sid,
        }


@dataclass(frozen=True)
class Dtmf:
    sequence_number: int
    stream_sid: str
    digit: str
    track: str = "inbound_track"

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": "dtmf",
            "streamSid": self.stream_sid,
            "sequenceNumber": str(self.sequence_number),
            "dtmf": {"track": self.track, "digit": self.digit},
        }


@dataclass(frozen=True)
class Mark:
    """Twilio echoing a mark we sent: the audio before it has been played (or cleared)."""
    sequence_number: int
    stream_sid: str
    name: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": "mark",
            "sequenceNumber": str(self.sequence_number),
            "streamSid": self.stream_sid,
            "mark": {"name": self.name},
        }


@dataclass(frozen=True)
class Stop:
    sequence_number: int
    stream_sid: str
    account_sid: str
    call_sid: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": "stop",
            "sequenceNumber": str(self.sequence_number),
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            "streamSid": self.stream_sid,
        }


InboundMessage = Connected | Start | Media | Dtmf | Mark | Stop


def _obj(d: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    v = d.get(key)
    if not isinstance(v, dict):
        raise CodecError("missing_field", f"{key!r} must be an object")
    return v


def _str(d: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    v = d.get(key)
    if v is None and not required:
        return ""
    if not isinstance(v, str):
        raise CodecError("missing_field", f"{key!r} must be a string")
    return v


def _int(d: Mapping[str, Any], key: str, *, required: bool = True) -> int:
    """Twilio sends counters as decimal strings; accept plain numbers too."""
    v = d.get(key)
    if v is None and not required:
        return 0
    if isinstance(v, bool):
        raise CodecError("bad_field", f"{key!r} is a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    raise CodecError("bad_field", f"{key!r} must be a decimal number, got {v!r}")


def parse_inbound(frame: str | bytes) -> InboundMessage:
    """One WebSocket text frame from Twilio -> a message. Raises CodecError (with `.reason`)."""
    if len(frame) > MAX_FRAME_BYTES:
        raise CodecError("oversize", f"{len(frame)} bytes > {MAX_FRAME_BYTES}")
    try:
        d = json.loads(frame)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CodecError("bad_json", str(e)) from None
    if not isinstance(d, dict):
        raise CodecError("bad_json", "top level is not an object")
    event = d.get("event")
    if event == "media":
        m = _obj(d, "media")
        try:
            payload = base64.b64decode(_str(m, "payload"), validate=True)
        except (binascii.Error, ValueError) as e:
            raise CodecError("bad_base64", str(e)) from None
        return Media(_int(d, "sequenceNumber", required=False), _str(d, "streamSid"),
                     _str(m, "track", required=False) or "inbound", _int(m, "chunk", required=False),
                     _int(m, "timestamp", required=False), payload)
    if event == "connected":
        return Connected(_str(d, "protocol", required=False) or "Call", _str(d, "version", required=False))
    if event == "start":
        s = _obj(d, "start")
        fmt = s.get("mediaFormat") or {}
        if not isinstance(fmt, dict):
            raise CodecError("bad_field", "mediaFormat must be an object")
        mf = MediaFormat(_str(fmt, "encoding", required=False) or MULAW_ENCODING,
                         _int(fmt, "sampleRate", required=False) or 8000, _int(fmt, "channels", required=False) or 1)
        params = s.get("customParameters") or {}
        if not isinstance(params, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in params.items()):
            raise CodecError("bad_field", "customParameters must map strings to strings")
        tracks = s.get("tracks") or ["inbound"]
        if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
            raise CodecError("bad_field", "tracks must be a list of strings")
        stream_sid = _str(s, "streamSid", required=False) or _str(d, "streamSid")
        return Start(_int(d, "sequenceNumber", required=False), stream_sid, _str(s, "accountSid"),
                     _str(s, "callSid"), tuple(tracks), mf, dict(params))
    if event == "dtmf":
        t = _obj(d, "dtmf")
        digit = _str(t, "digit")
        if len(digit) != 1 or digit.upper() not in DTMF_DIGITS:
            raise CodecError("bad_field", f"not a DTMF digit: {digit!r}")
        return Dtmf(_int(d, "sequenceNumber", required=False), _str(d, "streamSid"), digit.upper(),
                    _str(t, "track", required=False) or "inbound_track")
    if event == "mark":
        return Mark(_int(d, "sequenceNumber", required=False), _str(d, "streamSid"), _str(_obj(d, "mark"), "name"))
    if event == "stop":
        s = d.get("stop") or {}
        if not isinstance(s, dict):
            raise CodecError("bad_field", "stop must be an object")
        return Stop(_int(d, "sequenceNumber", required=False), _str(d, "streamSid", required=False),
                    _str(s, "accountSid", required=False), _str(s, "callSid", required=False))
    raise CodecError("unknown_event", f"event {event!r}")


# ---------------------------------------------------------------- outbound (us -> Twilio)

@dataclass(frozen=True)
class OutMedia:
    stream_sid: str
    payload: bytes  # raw mu-law

    def to_dict(self) -> dict[str, Any]:
        return {"event": "media", "streamSid": self.stream_sid,
                "media": {"payload": base64.b64encode(self.payload).decode("ascii")}}


@dataclass(frozen=True)
class OutMark:
    stream_sid: str
    name: str

    def to_dict(self) -> dict[str, Any]:
        return {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": self.name}}


@dataclass(frozen=True)
class Clear:
    stream_sid: str

    def to_dict(self) -> dict[str, Any]:
        return {"event": "clear", "streamSid": self.stream_sid}


OutboundMessage = OutMedia | OutMark | Clear


def encode(msg: InboundMessage | OutboundMessage) -> str:
    """The JSON text frame for a message (compact separators, Twilio's field order)."""
    return json.dumps(msg.to_dict(), separators=(",", ":"))


def parse_outbound(frame: str | bytes) -> OutboundMessage:
    """What a Twilio-side peer does with our frames (used by the test client and the bench)."""
    try:
        d = json.loads(frame)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CodecError("bad_json", str(e)) from None
    if not isinstance(d, dict):
        raise CodecError("bad_json", "top level is not an object")
    event = d.get("event")
    sid = _str(d, "streamSid")
    if event == "media":
        try:
            return OutMedia(sid, base64.b64decode(_str(_obj(d, "media"), "payload"), validate=True))
        except (binascii.Error, ValueError) as e:
            if isinstance(e, CodecError):
                raise
            raise CodecError("bad_base64", str(e)) from None
    if event == "mark":
        return OutMark(sid, _str(_obj(d, "mark"), "name"))
    if event == "clear":
        return Clear(sid)
    raise CodecError("unknown_event", f"event {event!r}")
