"""Twilio phone numbers: voice webhook, bidirectional Media Streams transport, REST (transfer, outbound).

Set-up: in the Twilio console, point the number's "A call comes in" webhook at
`https://<public host>/twilio/voice` (HTTP POST) and run `duplexbot serve` with
`TWILIO_AUTH_TOKEN`, `TWILIO_ACCOUNT_SID`, `DUPLEXBOT_PUBLIC_URL=https://<public host>` (the URL
Twilio uses: signatures are checked against it, never against our Host header) and, for outbound
calls, `TWILIO_CALLER_ID`. The host must terminate TLS (Twilio only dials https/wss) and pass
WebSocket upgrades on `/twilio/media`. `duplexbot call +15551234567` then rings a phone;
`POST /twilio/call {"to": "+1..."}` does the same over HTTP (loopback only, or with
`Authorization: Bearer $DUPLEXBOT_CALL_API_TOKEN`).

Public names:
- `TwilioSettings`: the component's settings (from the environment).
- `codec`: Media Streams message types, `parse_inbound`, `parse_outbound`, `encode`.
- `MediaStream`: the sans-IO state machine of one stream (pacing, marks, clear, drops).
- `answer_call`, `dial_twiml`, `stream_twiml`: the voice webhook and TwiML.
- `validate_signature`, `sign_request`, `StreamTokens`: webhook signatures and one-time stream tokens.
- `TwilioMediaTransport`, `StreamRegistry`, `serve_media_socket` (media.py): the asyncio edge, a `Transport`.
- `TwilioRest` (rest.py): redirect a live call, start an outbound call.
"""
from . import codec
from .media import StreamRegistry, TwilioMediaTransport, serve_media_socket
from .rest import CallResource, TwilioApiError, TwilioRest
from .settings import TwilioSettings
from .signature import StreamTokens, TokenError, sign_request, validate_signature
from .stream import MediaStream, StreamStats
from .webhook import answer_call, dial_twiml, stream_twiml, validate_target

__all__ = ["codec", "TwilioSettings", "StreamTokens", "TokenError", "sign_request", "validate_signature",
           "MediaStream", "StreamStats", "answer_call", "dial_twiml", "stream_twiml", "validate_target",
           "CallResource", "TwilioApiError", "TwilioRest", "StreamRegistry", "TwilioMediaTransport",
           "serve_media_socket"]
