"""Starts the SIP listener with the HTTP server when DUPLEXBOT_SIP=1 (see sip/config.py for the
variables). Every answered call runs through `runtime.calls.run(SipTransport(call))`."""
from __future__ import annotations

import logging
import os
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)
SIP_SERVER_KEY = web.AppKey("sip_server", object)


def setup(app: web.Application, runtime: Any) -> None:
    from sip.config import SipSettings

    env = getattr(getattr(runtime, "settings", None), "env", None) or os.environ
    settings = SipSettings.from_env(env)
    if not settings.enabled:
        return

    async def on_startup(app: web.Application) -> None:
        from sip import SipServer

        from ..transports.sip import SipTransport

        async def run_call(call) -> None:
            await runtime.calls.run(SipTransport(call))

        server = await SipServer(settings.server, run_call).start()
        app[SIP_SERVER_KEY] = server
        if settings.registration is not None and settings.registrar_addr is not None:
            server.register(settings.registration, settings.registrar_addr)

    async def on_cleanup(app: web.Application) -> None:
        server = app.get(SIP_SERVER_KEY)
        if server is not None:
            await server.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
