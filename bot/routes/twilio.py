"""Twilio routes: `POST /twilio/voice` (answer webhook), `GET /twilio/media` (Media Streams
WebSocket), `POST /twilio/call` (start an outbound call).

`setup(app, runtime)` takes `runtime.settings.twilio` (parsed once by `Settings.from_env`, with the
bot's public URL `runtime.settings.public_base_url`) and runs every accepted stream through
`runtime.calls.run(transport)`. `install(app, settings, run_call)` is the same without a Runtime
(tests, the bench).

Admission (bot/engine/admission.py): the webhook asks the process's controller for a slot and holds
it for the call's media stream (`RESERVATION_HOLD` s). Refused, the call is answered
`<Reject reason="busy"/>` (Twilio fails over or the caller hears busy), or `<Dial>` to
`DUPLEXBOT_OVERFLOW_NUMBER` when one is set, before any media or TTS work. A media stream that
holds no slot and cannot get one is closed with 1013 (try again later) before the engine sees it.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import secrets
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import MultiDict

from ..engine.admission import AdmissionController
from ..transports.twilio import metrics
from ..transports.twilio.media import CLOSE_TRY_AGAIN, RunCall, StreamRegistry, TwilioMediaTransport, serve_media_socket
from ..transports.twilio.rest import TwilioApiError, TwilioRest
from ..transports.twilio.settings import TwilioSettings
from ..transports.twilio.signature import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER, StreamTokens
from ..transports.twilio.webhook import WebhookReply, answer_call, busy_twiml, dial_twiml

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger(__name__)

MAX_FORM = 64 * 1024
E164_MAX = 16
RESERVATION_HOLD = 30.0   # s a webhook's slot waits for its media stream (Twilio connects within ~1 s)


class TwilioService:
    """Everything the Twilio routes share in one process."""

    def __init__(self, settings: TwilioSettings, run_call: RunCall, rest: TwilioRest | None = None,
                 admission: AdmissionController | None = None):
        self.settings = settings
        self.run_call = run_call
        self.admission = admission
        # without an auth token there is no webhook and so no valid token: the key only has to be secret
        self.tokens = StreamTokens(settings.auth_token or secrets.token_hex(16), ttl=settings.token_ttl)
        self.registry = StreamRegistry()
        if rest is None and settings.account_sid and settings.auth_token:
            rest = TwilioRest(settings)
        self.rest = rest

    async def voice(self, request: web.Request) -> web.Response:
        if request.content_length and request.content_length > MAX_FORM:
            metrics.WEBHOOKS.labels("too_large").inc()
            return web.Response(status=413, text="request too large")
        # a webhook's form holds text fields only (Twilio never uploads files); every value of a repeated
        # field stays, as the signature covers them all
        form = MultiDict((k, v) for k, v in (await request.post()).items() if isinstance(v, str))
        # the URL Twilio requested, as it wrote it: the public base plus our raw (undecoded) path and query
        url = self.settings.public_base_url.rstrip("/") + request.raw_path
        reply = answer_call(self.settings, self.tokens, url, form, request.headers.get(SIGNATURE_HEADER),
                            time.time(), request.headers.get(SIGNATURE_SETTINGS_HEADER),
                            busy=len(self.registry) >= self.settings.max_streams)
        if reply.status == 200 and not reply.reason and self.admission is not None:   # signed, would stream
            decision = self.admission.admit(reply.call_sid, "twilio", asyncio.get_running_loop().time(),
                                            hold=RESERVATION_HOLD)
            if not decision.admitted:
                log.info("twilio call %s refused by admission (%s)", reply.call_sid, decision.reason)
                reply = WebhookReply(200, busy_twiml(), call_sid=reply.call_sid, reason="busy")
        if reply.reason == "busy" and self.overflow_number:
            reply = WebhookReply(200, dial_twiml(self.overflow_number), call_sid=reply.call_sid, reason="overflow")
        metrics.WEBHOOKS.labels(reply.reason or "ok").inc()
        if reply.status != 200:
            log.warning("twilio voice webhook refused (%s) from %s", reply.reason, request.remote)
        return web.Response(status=reply.status, text=reply.body, content_type=reply.content_type)

    @property
    def overflow_number(self) -> str:
        return self.admission.settings.overflow_number if self.admission is not None else ""

    async def media(self, request: web.Request) -> web.StreamResponse:
        run_call = self.run_call if self.admission is None else self._run_admitted
        return await serve_media_socket(request, settings=self.settings, tokens=self.tokens, registry=self.registry,
                                        run_call=run_call, rest=self.rest)

    async def _run_admitted(self, transport: TwilioMediaTransport) -> None:
        """Run the call if it holds a slot (the webhook's reservation) or can get one now."""
        assert self.admission is not None
        call_sid = transport.info.call_id
        decision = self.admission.admit(call_sid, "twilio", asyncio.get_running_loop().time())
        if not decision.admitted:
            metrics.STREAMS.labels("refused").inc()
            log.warning("twilio stream for %s refused by admission (%s)", call_sid, decision.reason)
            await transport.ws.close(code=CLOSE_TRY_AGAIN, message=b"over capacity")
            return
        try:
            await self.run_call(transport)
        finally:
            self.admission.release(call_sid, "twilio")

    def _authorised(self, request: web.Request) -> bool:
        token = self.settings.call_api_token
        if token:
            given = request.headers.get("Authorization", "")
            return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
        try:
            return ipaddress.ip_address(request.remote or "").is_loopback
        except ValueError:
            return False

    async def call(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "not allowed"}, status=403)
        if self.rest is None:
            return web.json_response({"error": "Twilio REST API not configured "
                                               "(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)"},
                                     status=503)
        try:
            body: Any = (await request.json() if request.content_type == "application/json"
                         else dict(await request.post()))
        except ValueError:
            return web.json_response({"error": "body must be JSON or a form"}, status=400)
        to = str(body.get("to", "")) if isinstance(body, dict) else ""
        from_ = str(body.get("from", "") or self.settings.caller_id) if isinstance(body, dict) else ""
        if not (to.startswith("+") and to[1:].isdigit() and len(to) <= E164_MAX):
            return web.json_response({"error": "'to' must be an E.164 number like +15551234567"}, status=400)
        if not from_:
            return web.json_response({"error": "no 'from' given and TWILIO_CALLER_ID not set"}, status=400)
        try:
            call = await self.rest.create_call(to, from_, self.settings.voice_url)
        except TwilioApiError as e:
            return web.json_response({"error": str(e), "retryable": e.retryable}, status=502)
        return web.json_response({"sid": call.sid, "status": call.status, "to": to, "from": from_})

    async def close(self, _app: web.Application | None = None) -> None:
        if self.rest is not None:
            await self.rest.close()


TWILIO_SERVICE = web.AppKey("twilio_service", TwilioService)


def install(app: web.Application, settings: TwilioSettings, run_call: RunCall,
            rest: TwilioRest | None = None, admission: AdmissionController | None = None) -> TwilioService:
    svc = TwilioService(settings, run_call, rest, admission)
    app[TWILIO_SERVICE] = svc
    app.router.add_post("/twilio/voice", svc.voice)
    app.router.add_get("/twilio/media", svc.media)
    app.router.add_post("/twilio/call", svc.call)
    app.on_cleanup.append(svc.close)
    return svc


def settings_for(runtime: Runtime) -> TwilioSettings:
    """`runtime.settings.twilio` with the bot's one public URL (bot audio is pulled at the
    settings' `read_rate`, the line's 8 kHz: see TwilioSettings)."""
    s = runtime.settings.twilio
    base = runtime.settings.public_base_url
    if base:
        s = replace(s, public_base_url=base.rstrip("/"))
    return s


def setup(app: web.Application, runtime: Runtime) -> None:
    async def run_call(transport: TwilioMediaTransport) -> None:
        await runtime.calls.run(transport)

    install(app, settings_for(runtime), run_call, admission=runtime.admission)
