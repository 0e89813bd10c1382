"""Read-only HTTP views of the call store: `GET /api/policy?tenant=T&number=N` (the effective
barge-in policy with where each value comes from) and `GET /api/state/stats` (writer counters:
pending, written, dropped, Redis reachable). No personal data: live calls and transcripts are for
the authenticated supervisor console only."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger(__name__)


def setup(app: web.Application, runtime: Runtime) -> None:
    async def policy(request: web.Request) -> web.Response:
        state = runtime.state
        if state is None:
            return web.json_response({"error": "call state is disabled (DUPLEXBOT_STATE=0)"}, status=503)
        tenant = request.query.get("tenant", "default")
        number = request.query.get("number", "")
        try:
            resolved = await state.policies.resolve(tenant, number)
        except ValueError as e:
            return web.json_response({"error": str(e)}, status=400)
        except Exception as e:  # noqa: BLE001 - Redis away
            log.warning("GET /api/policy: %r", e)
            return web.json_response({"error": "call store unavailable", "retryable": True}, status=503)
        from dataclasses import asdict

        return web.json_response({"tenant": tenant, "number": number, **resolved.to_dict(),
                                  "settings": asdict(resolved.policy.to_settings(state.base_settings))})

    async def stats(request: web.Request) -> web.Response:
        state = runtime.state
        if state is None:
            return web.json_response({"enabled": False})
        return web.json_response({"enabled": True, **state.stats()})

    app.router.add_get("/api/policy", policy)
    app.router.add_get("/api/state/stats", stats)
