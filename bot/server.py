"""The HTTP server (aiohttp). Routes live in `bot/routes/*.py`, each with `setup(app, runtime)`."""
from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
import signal
from typing import TYPE_CHECKING

from aiohttp import web

from . import routes

if TYPE_CHECKING:
    from .runtime import Runtime
    from .settings import Settings

log = logging.getLogger(__name__)
RUNTIME_KEY: web.AppKey[Runtime] = web.AppKey("runtime")


def build_app(runtime: Runtime) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app[RUNTIME_KEY] = runtime
    for mod in sorted(pkgutil.iter_modules(routes.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{routes.__name__}.{mod.name}")
        setup = getattr(module, "setup", None)
        if setup is not None:
            setup(app, runtime)
    return app


async def serve(settings: Settings, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    from .runtime import Runtime

    runtime = await Runtime.start(settings)
    app = build_app(runtime)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.http.host, settings.http.port)
    await site.start()
    log.info("duplexbot listening on http://%s:%d (policy %s)", settings.http.host, settings.http.port,
             runtime.policy_name)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await runtime.close()
