"""sip.sdp offer/answer and sip.digest (RFC 2617 / RFC 8760 vectors)."""
from pathlib import Path

import pytest

from sip import sdp
from sip.digest import Challenge, authorization, digest_response, parse_challenge, pick_challenge
from sip.message import parse_message

FIX = Path(__file__).parent / "fixtures"


def test_answer_to_baresip_offer():
    offer = sdp.parse_sdp(parse_message((FIX / "baresip_invite.bin").read_bytes()).body)
    ans, neg = sdp.answer(offer, "127.0.0.1", 20000, 42)
    assert neg.codec == "PCMU" and neg.payload_type == 0 and neg.dtmf_payload_type == 101
    assert neg.remote_addr == ("192.0.2.2", 1946) and neg.direction == "sendrecv"
    text = bytes(ans).decode()
    assert "m=audio 20000 RTP/AVP 0 101" in text and "a=rtpmap:101 telephone-event/8000" in text


def test_hold_and_rejected_streams():
    offer = sdp.parse_sdp(b"v=0\r\no=x 1 2 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
                          b"m=video 5000 RTP/AVP 31\r\nm=audio 6000 RTP/AVP 8\r\na=sendonly\r\n")
    ans, neg = sdp.answer(offer, "127.0.0.1", 20000, 1)
    assert neg.direction == "recvonly" and not neg.we_send and neg.they_send and neg.codec == "PCMA"
    assert ans.media[0].port == 0 and ans.media[1].port == 20000
    inactive = sdp.parse_sdp(b"v=0\r\no=x 1 3 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                             b"m=audio 6000 RTP/AVP 0\r\n")
    _, neg = sdp.answer(inactive, "127.0.0.1", 20000, 1, 1)
    assert neg.remote_addr is None and neg.direction == "inactive"


def test_no_common_codec_and_garbage():
    with pytest.raises(sdp.SdpError):
        sdp.answer(sdp.parse_sdp(b"v=0\r\no=x 1 1 IN IP4 1.1.1.1\r\nm=audio 1 RTP/AVP 18\r\n"), "h", 1, 1)
    with pytest.raises(sdp.SdpError):
        sdp.parse_sdp(b"not sdp at all")


def test_offer_and_accept_answer():
    off = sdp.offer("127.0.0.1", 30000, 7)
    ans, _ = sdp.answer(sdp.parse_sdp(bytes(off)), "127.0.0.2", 31000, 8)
    neg = sdp.accept_answer(off, sdp.parse_sdp(bytes(ans)))
    assert neg.remote_addr == ("127.0.0.2", 31000) and neg.codec == "PCMU" and neg.dtmf_payload_type == 101


def test_rfc2617_md5_vector():
    # RFC 2617 section 3.5 example
    ch = Challenge("testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "MD5", ("auth",),
                   "5ccc069c403ebaf9f0171e9517f40e41")
    r = digest_response(ch, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", cnonce="0a4f113b", nc=1)
    assert r == "6629fae49393a05397450978507c4ef1"


def test_rfc7616_sha256_vector():
    # RFC 7616 section 3.9.1 (the SHA-256 algorithm RFC 8760 brings to SIP)
    ch = Challenge("http-auth@example.org", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "SHA-256", ("auth",),
                   "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
    r = digest_response(ch, "Mufasa", "Circle of Life", "GET", "/dir/index.html",
                        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", nc=1)
    assert r == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def test_challenge_parsing_and_preference():
    md5 = 'Digest realm="r", nonce="n1", qop="auth,auth-int", opaque="o"'
    sha = 'Digest realm="r", nonce="n2", algorithm=SHA-256, qop="auth"'
    assert parse_challenge(md5).qop == ("auth", "auth-int")
    assert pick_challenge([md5, sha]).algorithm == "SHA-256"
    with pytest.raises(ValueError):
        parse_challenge("NoOneKnowsThisScheme opaque-data=here")
    value = authorization(parse_challenge(sha), "bot", "pw", "REGISTER", "sip:trunk")
    assert value.startswith("Digest ") and "algorithm=SHA-256" in value and 'qop=auth' in value
