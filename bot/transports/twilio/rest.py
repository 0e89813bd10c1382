"""The two Twilio REST calls we make, with aiohttp (the twilio package's client is synchronous).

- `redirect(call_sid, twiml)`: `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with
  `Twiml=`: replaces what a live call is doing (a transfer: `<Dial>` a person).
- `create_call(to, from_, url)`: `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` with `To`,
  `From`, `Url` (the answer webhook) and `Method=POST`: an outbound call.
Both use HTTP basic auth (AccountSid:AuthToken) and form encoding, as the API requires.
"""
from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any

import aiohttp

from . import metrics
from .settings import TwilioSettings


class TwilioApiError(Exception):
    """Twilio refused or could not be reached. `retryable`: a retry may succeed (5xx, 429, network)."""

    def __init__(self, message: str, status: int = 0, code: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status, self.code, self.retryable = status, code, retryable


@dataclass(frozen=True)
class CallResource:
    sid: str
    status: str
    raw: dict


class TwilioRest:
    def __init__(self, settings: TwilioSettings, session: aiohttp.ClientSession | None = None):
        if not (settings.account_sid and settings.auth_token):
            raise ValueError("the Twilio REST API needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        self.settings = settings
        self._session = session
        self._own_session = session is None

    def _url(self, tail: str) -> str:
        return f"{self.settings.api_base}/2010-04-01/Accounts/{self.settings.account_sid}/{tail}"

    async def _post(self, op: str, tail: str, form: dict[str, str]) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        cred = base64.b64encode(f"{self.settings.account_sid}:{self.settings.auth_token}".encode()).decode()
        headers = {"Authorization": f"Basic {cred}", "Accept": "application/json"}
        timeout = aiohttp.ClientTimeout(total=self.settings.rest_timeout)
        try:
            async with self._session.post(self._url(tail), data=form, headers=headers, timeout=timeout) as r:
                try:
                    body = await r.json(content_type=None)
                except ValueError:
                    body = {}
                if r.status >= 300:
                    metrics.REST.labels(op, str(r.status)).inc()
                    msg = body.get("message") if isinstance(body, dict) else None
                    raise TwilioApiError(f"Twilio {op}: HTTP {r.status}: {msg or r.reason}", r.status,
                                         body.get("code") if isinstance(body, dict) else None,
                                         retryable=r.status >= 500 or r.status == 429)
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            metrics.REST.labels(op, "network").inc()
            raise TwilioApiError(f"Twilio {op}: {type(e).__name__}: {e}", retryable=True) from e
        metrics.REST.labels(op, "ok").inc()
        return body if isinstance(body, dict) else {}

    async def redirect(self, call_sid: str, twiml: str) -> CallResource:
        body = await self._post("redirect", f"Calls/{call_sid}.json", {"Twiml": twiml})
        return CallResource(body.get("sid", call_sid), body.get("status", ""), body)

    async def create_call(self, to: str, from_: str, url: str | None = None) -> CallResource:
        if not from_:
            raise ValueError("an outbound call needs a From number (TWILIO_CALLER_ID)")
        url = url or self.settings.voice_url
        body = await self._post("create_call", "Calls.json", {"To": to, "From": from_, "Url": url, "Method": "POST"})
        return CallResource(body.get("sid", ""), body.get("status", ""), body)

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None
