"""The browser pages served by the bot: plain HTML/JS/CSS, no build step.

    index.html       `/`            call the bot over WebRTC, live transcript and decision timeline
    supervisor.html  `/supervisor`  the supervisor console
    static/          `/web/`        common.css, common.js, call.js, supervisor.js
"""
from __future__ import annotations

from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web

WEB_DIR = Path(__file__).resolve().parent
_STATIC_KEY = web.AppKey("duplexbot_web_static", bool)


def page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler serving one HTML page from this folder (never cached, so a deploy shows at once)."""
    path = WEB_DIR / name

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache",
                                               "Content-Type": "text/html; charset=utf-8"})

    return handler


def setup_static(app: web.Application) -> None:
    """Serve static/ under /web/ (once, whichever route module asks first)."""
    if app.get(_STATIC_KEY):
        return
    app[_STATIC_KEY] = True
    app.router.add_static("/web/", WEB_DIR / "static", show_index=False, append_version=False)
