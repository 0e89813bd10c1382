"""The voice webhook (`POST /twilio/voice`) and the TwiML we answer with (sans-IO).

`answer_call()` takes what the HTTP edge read (the public URL Twilio requested, the form fields,
the signature header) and returns the status and body to send: 403 for a bad or missing
signature, else TwiML that connects the call to our bidirectional media WebSocket with a fresh
one-time token as a `<Parameter>`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import parse_qs, urlsplit

from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from ...policy.completeness import MAX_EXPECTED_DIGITS
from .settings import TwilioSettings
from .signature import StreamTokens, validate_signature

TOKEN_PARAM = "token"
CALLER_PARAM = "caller"
CALLEE_PARAM = "callee"
# the voice URL may say the call is there to take a number ("...?expect_digits=8": an IVR step that
# hands the caller to the bot for their order number); the stream carries it to the call's policy
EXPECT_DIGITS_PARAM = "expect_digits"

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_SIP = re.compile(r"^sips?:[^\s<>\"]+@[^\s<>\"]+$")


@dataclass(frozen=True)
class WebhookReply:
    status: int
    body: str
    content_type: str = "text/xml"
    call_sid: str = ""
    reason: str = ""  # why a request was refused (for the log and counters)


def stream_twiml(media_url: str, token: str, caller: str = "", callee: str = "", expect_digits: int = 0) -> str:
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=media_url)
    stream.parameter(name=TOKEN_PARAM, value=token)
    if caller:
        stream.parameter(name=CALLER_PARAM, value=caller)
    if callee:
        stream.parameter(name=CALLEE_PARAM, value=callee)
    if expect_digits:
        stream.parameter(name=EXPECT_DIGITS_PARAM, value=str(expect_digits))
    response.append(connect)
    return str(response)


def parse_expect_digits(value: str | None) -> int:
    """The `expect_digits` of a voice URL or stream parameter: 0 when absent, else a whole number
    from 1 to MAX_EXPECTED_DIGITS. Raises ValueError otherwise."""
    if value is None or value == "":
        return 0
    if not (value.isascii() and value.isdigit() and len(value) <= 2 and 1 <= int(value) <= MAX_EXPECTED_DIGITS):
        raise ValueError(f"{EXPECT_DIGITS_PARAM} must be a whole number from 1 to {MAX_EXPECTED_DIGITS}, "
                         f"got {value[:40]!r}")
    return int(value)


def validate_target(target: str) -> str:
    """A transfer target: an E.164 number or a SIP URI. Raises ValueError otherwise."""
    target = target.strip()
    if _E164.match(target) or _SIP.match(target):
        return target
    raise ValueError(f"transfer target must be an E.164 number (+15551234567) or a sip: URI, got {target!r}")


def dial_twiml(target: str, caller_id: str = "") -> str:
    """TwiML that hands the live call to `target` (number or SIP URI)."""
    target = validate_target(target)
    response = VoiceResponse()
    dial = Dial(caller_id=caller_id) if caller_id else Dial()
    if target.startswith(("sip:", "sips:")):
        dial.sip(target)
    else:
        dial.number(target)
    response.append(dial)
    return str(response)


def busy_twiml() -> str:
    response = VoiceResponse()
    response.reject(reason="busy")
    return str(response)


def answer_call(settings: TwilioSettings, tokens: StreamTokens, url: str, params: Mapping[str, str],
                signature: str | None, now: float, settings_header: str | None = None,
                busy: bool = False) -> WebhookReply:
    if not settings.configured:
        return WebhookReply(503, "Twilio is not configured (TWILIO_AUTH_TOKEN, DUPLEXBOT_PUBLIC_URL)",
                            "text/plain", reason="unconfigured")
    if not signature:
        return WebhookReply(403, "missing X-Twilio-Signature", "text/plain", reason="missing")
    if not validate_signature(settings.auth_token, url, params, signature, settings_header):
        return WebhookReply(403, "bad X-Twilio-Signature", "text/plain", reason="bad")
    call_sid = params.get("CallSid", "")
    if not call_sid:
        return WebhookReply(400, "CallSid missing", "text/plain", reason="no_callsid")
    if settings.account_sid and params.get("AccountSid", settings.account_sid) != settings.account_sid:
        return WebhookReply(403, "wrong account", "text/plain", reason="account")
    if busy:  # this worker is full: the caller hears a busy signal, Twilio may fail over
        return WebhookReply(200, busy_twiml(), call_sid=call_sid, reason="busy")
    try:
        expect = parse_expect_digits(parse_qs(urlsplit(url).query).get(EXPECT_DIGITS_PARAM, [""])[-1])
    except ValueError as e:  # the developer's voice URL is wrong: say so (Twilio's debugger shows it)
        return WebhookReply(400, str(e), "text/plain", call_sid=call_sid, reason="bad_expect_digits")
    caller, callee = params.get("From", ""), params.get("To", "")
    token = tokens.issue(call_sid, now, caller, callee)
    return WebhookReply(200, stream_twiml(settings.media_url, token, caller, callee, expect), call_sid=call_sid)
