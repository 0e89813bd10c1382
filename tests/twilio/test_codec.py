"""The Media Streams message codec against Twilio's documented examples (tests/twilio/fixtures)."""
import base64
import json
from pathlib import Path

import numpy as np
import pytest

from bot.audio import ulaw_decode
from bot.transports.twilio import codec

FIX = Path(__file__).parent / "fixtures"
SID = "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"


def fixture(name: str) -> str:
    return (FIX / f"{name}.json").read_text()


def compact(text: str) -> str:
    """The fixture as one compact JSON line, keeping Twilio's key order."""
    return json.dumps(json.loads(text), separators=(",", ":"))


@pytest.mark.parametrize("name", ["inbound_connected", "inbound_start", "inbound_media", "inbound_dtmf",
                                  "inbound_mark", "inbound_stop", "inbound_media_outbound_track"])
def test_inbound_round_trip_is_byte_exact(name):
    msg = codec.parse_inbound(fixture(name))
    assert codec.encode(msg) == compact(fixture(name))


def test_inbound_fields():
    start = codec.parse_inbound(fixture("inbound_start"))
    assert isinstance(start, codec.Start)
    assert (start.sequence_number, start.stream_sid, start.call_sid) == (1, SID, "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX")
    assert start.account_sid.startswith("AC") and start.tracks == ("inbound",)
    assert start.media_format == codec.MediaFormat("audio/x-mulaw", 8000, 1)
    assert start.custom_parameters == {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"}

    media = codec.parse_inbound(fixture("inbound_media"))
    assert isinstance(media, codec.Media)
    assert (media.sequence_number, media.track, media.chunk, media.timestamp_ms) == (4, "inbound", 2, 5)
    assert len(media.payload) == 160
    pcm = ulaw_decode(media.payload)
    assert 2500 < np.abs(pcm).max() < 3500  # the 440 Hz tone at amplitude 3000

    dtmf = codec.parse_inbound(fixture("inbound_dtmf"))
    assert dtmf == codec.Dtmf(5, SID, "1", "inbound_track")
    assert codec.parse_inbound(fixture("inbound_mark")) == codec.Mark(4, SID, "my label")
    stop = codec.parse_inbound(fixture("inbound_stop"))
    assert isinstance(stop, codec.Stop) and stop.call_sid.startswith("CA")
    assert codec.parse_inbound(fixture("inbound_connected")) == codec.Connected("Call", "1.0.0")


def test_outbound_messages_match_the_documented_layout():
    payload = base64.b64decode(json.loads(fixture("outbound_media"))["media"]["payload"])
    assert codec.encode(codec.OutMedia(SID, payload)) == compact(fixture("outbound_media"))
    assert codec.encode(codec.OutMark(SID, "my label")) == compact(fixture("outbound_mark"))
    assert codec.encode(codec.Clear(SID)) == compact(fixture("outbound_clear"))
    for name in ("outbound_media", "outbound_mark", "outbound_clear"):
        assert codec.encode(codec.parse_outbound(fixture(name))) == compact(fixture(name))


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "bad_json"),
    ("[1, 2]", "bad_json"),
    (b"\xff\xfe{}", "bad_json"),
    ('{"event": "media", "streamSid": "MZ1", "media": {"payload": "***"}}', "bad_base64"),
    ('{"event": "media", "streamSid": "MZ1", "media": {"payload": "AAE"}}', "bad_base64"),
    ('{"event": "media", "streamSid": "MZ1"}', "missing_field"),
    ('{"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "12"}}', "bad_field"),
    ('{"event": "start", "sequenceNumber": "x1", "start": {"accountSid": "AC", "callSid": "CA", "streamSid": "MZ"}}',
     "bad_field"),
    ('{"event": "start", "sequenceNumber": "1", "start": {}}', "missing_field"),
    ('{"event": "start", "start": {"accountSid": "AC", "callSid": "CA", "streamSid": "MZ", '
     '"customParameters": {"a": 1}}}', "bad_field"),
    ('{"event": "hello"}', "unknown_event"),
    ('{"no": "event"}', "unknown_event"),
    ("x" * (64 * 1024 + 1), "oversize"),
])
def test_bad_frames_raise_codec_error_with_a_reason(frame, reason):
    with pytest.raises(codec.CodecError) as e:
        codec.parse_inbound(frame)
    assert e.value.reason == reason
    assert isinstance(e.value, ValueError)


def test_numbers_are_accepted_where_twilio_sends_strings():
    msg = codec.parse_inbound('{"event":"media","sequenceNumber":7,"streamSid":"MZ1",'
                              '"media":{"track":"inbound","chunk":3,"timestamp":40,"payload":"/w=="}}')
    assert (msg.sequence_number, msg.chunk, msg.timestamp_ms, msg.payload) == (7, 3, 40, b"\xff")
