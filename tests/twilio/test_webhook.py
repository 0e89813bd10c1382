"""Webhook signatures, stream tokens and the TwiML we answer with (no sockets)."""
import xml.etree.ElementTree as ET

import pytest

from bot.transports.twilio.settings import TwilioSettings
from bot.transports.twilio.signature import StreamTokens, TokenError, sign_request, validate_signature
from bot.transports.twilio.webhook import answer_call, dial_twiml, validate_target

TOKEN = "12345678901234567890123456789012"
# The worked example of Twilio's request-validation documentation (and of its SDKs' tests):
# this URL and these parameters, signed with auth token "12345", give this signature.
DOC_TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}
DOC_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="

SETTINGS = TwilioSettings(auth_token=TOKEN, account_sid="AC" + "0" * 32, public_base_url="https://bot.example.com")
CALL = {"CallSid": "CA" + "a" * 32, "AccountSid": "AC" + "0" * 32, "From": "+15551230000", "To": "+15559870000",
        "CallStatus": "ringing", "Direction": "inbound"}
VOICE_URL = "https://bot.example.com/twilio/voice"


def test_documented_signature_example():
    assert sign_request(DOC_TOKEN, DOC_URL, DOC_PARAMS) == DOC_SIGNATURE
    assert validate_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS, DOC_SIGNATURE)
    assert not validate_signature(DOC_TOKEN, DOC_URL, {**DOC_PARAMS, "Digits": "1235"}, DOC_SIGNATURE)
    assert not validate_signature(DOC_TOKEN, DOC_URL.replace("mycompany.com", "evil.com"), DOC_PARAMS, DOC_SIGNATURE)
    assert not validate_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS, None)
    assert not validate_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS, "")
    # Twilio may sign with the default port written out
    sig443 = sign_request(DOC_TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", DOC_PARAMS)
    assert validate_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS, sig443)


def test_voice_webhook_answers_with_connect_stream_and_a_token():
    sig = sign_request(TOKEN, VOICE_URL, CALL)
    tokens = StreamTokens(TOKEN)
    reply = answer_call(SETTINGS, tokens, VOICE_URL, CALL, sig, now=1000.0)
    assert reply.status == 200 and reply.content_type == "text/xml"
    root = ET.fromstring(reply.body)
    assert root.tag == "Response"
    (connect,) = list(root)
    assert connect.tag == "Connect"
    (stream,) = list(connect)
    assert stream.tag == "Stream" and stream.get("url") == "wss://bot.example.com/twilio/media"
    assert "?" not in stream.get("url")
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params["caller"] == CALL["From"] and params["callee"] == CALL["To"]
    claims = tokens.redeem(params["token"], CALL["CallSid"], 1001.0, params["caller"], params["callee"])
    assert claims.call_sid == CALL["CallSid"]


@pytest.mark.parametrize("mutate,status,reason", [
    (lambda url, p, sig: (url, p, None), 403, "missing"),
    (lambda url, p, sig: (url, p, sig[:-2] + "x="), 403, "bad"),
    (lambda url, p, sig: (url, {**p, "To": "+15550000000"}, sig), 403, "bad"),
    # signed for the URL a Host header of 127.0.0.1:8080 would suggest: we check the public one
    (lambda url, p, sig: (url, p, sign_request(TOKEN, "http://127.0.0.1:8080/twilio/voice", p)), 403, "bad"),
    (lambda url, p, sig: (url, p, sign_request("another-token", url, p)), 403, "bad"),
])
def test_voice_webhook_refuses_bad_signatures(mutate, status, reason):
    url, params, sig = mutate(VOICE_URL, CALL, sign_request(TOKEN, VOICE_URL, CALL))
    reply = answer_call(SETTINGS, StreamTokens(TOKEN), url, params, sig, now=0.0)
    assert (reply.status, reply.reason) == (status, reason)
    assert "<Stream" not in reply.body


def test_voice_webhook_other_refusals():
    other = {**CALL, "AccountSid": "AC" + "1" * 32}
    reply = answer_call(SETTINGS, StreamTokens(TOKEN), VOICE_URL, other, sign_request(TOKEN, VOICE_URL, other), 0.0)
    assert reply.status == 403
    unconfigured = TwilioSettings()
    assert answer_call(unconfigured, StreamTokens("k"), VOICE_URL, CALL, "sig", 0.0).status == 503


def test_a_voice_url_that_asks_for_a_number_says_so_to_the_stream():
    tokens = StreamTokens(TOKEN)
    url = VOICE_URL + "?expect_digits=8"
    reply = answer_call(SETTINGS, tokens, url, CALL, sign_request(TOKEN, url, CALL), now=1000.0)
    stream = ET.fromstring(reply.body).find("./Connect/Stream")
    assert reply.status == 200 and stream is not None
    assert {p.get("name"): p.get("value") for p in stream.findall("Parameter")}["expect_digits"] == "8"
    plain = answer_call(SETTINGS, tokens, VOICE_URL, CALL, sign_request(TOKEN, VOICE_URL, CALL), now=1000.0)
    assert "expect_digits" not in plain.body
    for bad in ("0", "33", "eight", "-1", "8" * 500, "\u0663"):
        url = VOICE_URL + "?expect_digits=" + bad
        reply = answer_call(SETTINGS, tokens, url, CALL, sign_request(TOKEN, url, CALL), now=1000.0)
        assert (reply.status, reply.reason) == (400, "bad_expect_digits"), bad
        assert "expect_digits must be a whole number from 1 to 32" in reply.body and len(reply.body) < 200


def test_stream_tokens_are_one_time_bound_and_expiring():
    t = StreamTokens("key", ttl=60)
    tok = t.issue("CA1", now=100.0, caller="+1555")
    with pytest.raises(TokenError, match="bad"):
        t.redeem(tok, "CA2", 101.0, "+1555")  # another call
    with pytest.raises(TokenError, match="bad"):
        t.redeem(tok, "CA1", 101.0, "+1666")  # another caller
    with pytest.raises(TokenError, match="expired"):
        t.redeem(tok, "CA1", 200.0, "+1555")
    t.redeem(tok, "CA1", 101.0, "+1555")
    with pytest.raises(TokenError, match="reused"):
        t.redeem(tok, "CA1", 102.0, "+1555")
    for bad, reason in (("", "missing"), ("abc", "malformed"), ("1.2", "malformed")):
        with pytest.raises(TokenError, match=reason):
            t.redeem(bad, "CA1", 101.0)
    with pytest.raises(TokenError, match="bad"):
        StreamTokens("other-key").redeem(t.issue("CA1", 100.0), "CA1", 101.0)


def test_dial_twiml():
    root = ET.fromstring(dial_twiml("+15551234567"))
    assert [(e.tag, e.text) for e in root.find("Dial")] == [("Number", "+15551234567")]
    root = ET.fromstring(dial_twiml("sip:agent@pbx.example.com;transport=tls", caller_id="+15550001111"))
    assert root.find("Dial").get("callerId") == "+15550001111"
    assert [(e.tag, e.text) for e in root.find("Dial")] == [("Sip", "sip:agent@pbx.example.com;transport=tls")]
    for bad in ("5551234", "+0123", "http://x", "sip:nobody", "<Hangup/>"):
        with pytest.raises(ValueError):
            validate_target(bad)


def test_settings_from_env():
    from bot.settings import Settings

    # DUPLEXBOT_PUBLIC_URL is parsed once, by the root, and handed to the Twilio settings
    s = Settings.from_env({"TWILIO_AUTH_TOKEN": "t", "TWILIO_ACCOUNT_SID": "AC1",
                           "DUPLEXBOT_PUBLIC_URL": "https://bot.example.com/", "TWILIO_API_BASE": "http://127.0.0.1:9"}).twilio
    assert (s.auth_token, s.account_sid, s.api_base) == ("t", "AC1", "http://127.0.0.1:9")
    assert s.media_url == "wss://bot.example.com/twilio/media" and s.voice_url == "https://bot.example.com/twilio/voice"
    assert TwilioSettings.from_env({}).api_base == "https://api.twilio.com"
    with pytest.raises(ValueError):
        TwilioSettings(public_base_url="bot.example.com")


def test_route_settings_follow_the_runtime():
    from types import SimpleNamespace

    from bot.routes.twilio import settings_for

    rt = SimpleNamespace(settings=SimpleNamespace(twilio=TwilioSettings.from_env({"TWILIO_AUTH_TOKEN": "t"}),
                                                  public_base_url="https://a.example/"),
                         services=SimpleNamespace(tts=SimpleNamespace(sample_rate=22050)))
    s = settings_for(rt)
    # bot audio is pulled at the line's rate whatever the TTS's (each sentence is resampled once)
    assert (s.auth_token, s.public_base_url, s.read_rate) == ("t", "https://a.example", 8000)
    rt.settings.public_base_url = "https://b.example"
    s = settings_for(rt)
    assert (s.public_base_url, s.read_rate) == ("https://b.example", 8000)
