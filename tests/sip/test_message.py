"""sip.message: parsing, serialization, header helpers."""
import pytest

from sip.message import (
    Headers,
    Request,
    Response,
    SipParseError,
    frame_stream,
    parse_message,
    parse_name_addr,
    parse_one,
    parse_uri,
    parse_via,
    split_list,
    unescape,
)

INVITE = (b"INVITE sip:bot@127.0.0.1:5060 SIP/2.0\r\n"
          b"v: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport\r\n"
          b"f: \"Alice \\\"A\\\"\" <sip:alice@127.0.0.1>;tag=abc\r\n"
          b"t: <sip:bot@127.0.0.1>\r\n"
          b"i: call-1@127.0.0.1\r\n"
          b"CSeq: 1 INVITE\r\n"
          b"Contact: <sip:alice@127.0.0.1:5061>, <sip:alice@10.0.0.1>;q=0.5\r\n"
          b"Subject: folded\r\n  value\r\n"
          b"c: application/sdp\r\n"
          b"l: 4\r\n\r\nv=0\r\nEXTRA")


def test_parse_request_compact_folding_lists():
    req = parse_message(INVITE)
    assert isinstance(req, Request) and req.method == "INVITE"
    assert req.call_id == "call-1@127.0.0.1"
    assert req.cseq == (1, "INVITE")
    assert req.headers.get("subject") == "folded value"
    assert req.headers.get_all("Contact") == ["<sip:alice@127.0.0.1:5061>", "<sip:alice@10.0.0.1>;q=0.5"]
    assert req.body == b"v=0\r"[:4]  # Content-Length bounds the body; datagram tail ignored
    frm = parse_name_addr(req.headers.get("From"))
    assert frm.display == 'Alice "A"' and frm.tag == "abc" and frm.uri == "sip:alice@127.0.0.1"


def test_roundtrip_sets_content_length():
    req = parse_message(INVITE)
    again = parse_message(bytes(req))
    assert again.headers.get("Content-Length") == "4"
    assert again.body == req.body and again.headers.get_all("Via") == req.headers.get_all("Via")


def test_response_parse_and_bad_status():
    resp = parse_message(b"SIP/2.0 180 Ringing\r\nCall-ID: x\r\n\r\n")
    assert isinstance(resp, Response) and resp.status == 180
    with pytest.raises(SipParseError):
        parse_message(b"SIP/2.0 4294967301 big\r\n\r\n")
    assert parse_message(b"SIP/2.0 100 \r\nCall-ID: y\r\n\r\n").reason == ""


@pytest.mark.parametrize("data,status", [
    (b"INVITE sip:a@b SIP/7.0\r\nVia: SIP/2.0/UDP h\r\n\r\n", 505),
    (b"INVITE  sip:a@b SIP/2.0\r\n\r\n", 400),
    (b"INVITE sip:a@b SIP/2.0\r\nl: 10\r\n\r\nshort", 400),
    (b"INVITE sip:a@b SIP/2.0\r\nl: -1\r\n\r\n", 400),
    (b"INVITE sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\nx", 400),
    (b"no blank line", 400),
    (b"INVITE sip:a@b SIP/2.0\r\nbad header line\r\n\r\n", 400),
])
def test_malformed_raises_valueerror(data, status):
    with pytest.raises(ValueError) as e:
        parse_message(data)
    assert e.value.status == status


def test_headers_are_kept_on_error_for_a_400():
    with pytest.raises(SipParseError) as e:
        parse_message(b"INVITE sip:a@b SIP/2.0\r\nCall-ID: z\r\nl: 99\r\n\r\n")
    assert e.value.headers.get("Call-ID") == "z"


def test_stream_framing():
    one = bytes(Request("OPTIONS", "sip:a@b", Headers.of(("Call-ID", "1")), b"hi"))
    msg, rest = frame_stream(b"\r\n\r\n" + one + one[:10])
    assert msg == one and rest == one[:10]
    assert frame_stream(rest) == (None, rest)
    with pytest.raises(SipParseError):
        frame_stream(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: -5\r\n\r\n")
    m, used = parse_one(one + b"junk", stream=True)
    assert used == len(one)


def test_via_uri_helpers():
    v = parse_via("SIP  /  2.0 / UDP  host.example.com:5070 ; branch = z9hG4bKx ; rport")
    assert (v.transport, v.host, v.port, v.branch, v.params["rport"]) == \
        ("UDP", "host.example.com", 5070, "z9hG4bKx", "")
    with pytest.raises(ValueError):
        parse_via("SIP/2.0/UDP 192.0.2.15;;,;,,")
    u = parse_uri("sip:user;x=1@example.com:5080;transport=tcp?Subject=hi")
    assert (u.user, u.host, u.port, u.params["transport"], u.headers) == \
        ("user;x=1", "example.com", 5080, "tcp", "Subject=hi")
    assert str(parse_uri("sip:[::1]:5060")) == "sip:[::1]:5060"
    assert unescape("sip:%75se%72@x%zz") == "sip:user@x%zz"
    assert split_list('a, "b,c" <sip:x>, <sip:y,z>') == ['a', '"b,c" <sip:x>', '<sip:y,z>']


@pytest.mark.parametrize("value", ['"unterminated <sip:a@b>', '< sip:a@b >', 'Bell, Alexander <sip:a@b>',
                                   'sip:a@b?Route=x'])
def test_bad_name_addr(value):
    with pytest.raises(ValueError):
        parse_name_addr(value)


def test_fixture_invite_from_baresip_parses():
    from pathlib import Path
    data = (Path(__file__).parent / "fixtures" / "baresip_invite.bin").read_bytes()
    req = parse_message(data)
    assert req.method == "INVITE" and b"m=audio" in req.body
