"""Starts the SIP listener with the HTTP server when DUPLEXBOT_SIP=1 (`runtime.settings.sip`; see
sip/config.py for the variables). Every answered call runs through `runtime.calls.run(SipTransport(call))`.

Inbound INVITEs are admitted by the process's admission controller (`runtime.admission`, through
`SipAdmission`) before anything is set up for them; beyond it they get 503 + Retry-After.

`POST /sip/calls` {"to": "sip:user@host[:port]", "via": "host:port" (optional)} places an outbound
call (UAC INVITE) and runs the bot on it once answered (it holds an admission slot too: JSON 503
beyond capacity). Allowed with `Authorization: Bearer
$DUPLEXBOT_SIP_CALL_TOKEN` when that is set, else only from loopback."""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import secrets
from typing import TYPE_CHECKING, Iterator

from aiohttp import web

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from sip import SipCall, SipServer

    from ..runtime import Runtime

log = logging.getLogger(__name__)
SIP_SERVER_KEY: web.AppKey[SipServer] = web.AppKey("sip_server")


class _SipCollector:
    """Prometheus numbers of the SIP listener, read at scrape time (nothing on the media path)."""

    def __init__(self) -> None:
        self.server: SipServer | None = None

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        srv = self.server
        if srv is None or srv.ua is None:
            return
        yield GaugeMetricFamily("duplexbot_sip_live_calls", "SIP calls with media on this worker",
                                value=len(srv.calls))
        ua = CounterMetricFamily("duplexbot_sip_core_events", "SIP core counters (messages, rejections, "
                                 "retransmissions, timeouts)", labels=["event"])
        for k, v in sorted(srv.ua.stats.items()):
            ua.add_metric([k], v)
        yield ua
        edge = CounterMetricFamily("duplexbot_sip_edge_events", "SIP edge counters (sends, call ends, media "
                                   "clock skips, errors)", labels=["event"])
        for k, v in sorted(srv.stats.items()):
            edge.add_metric([k], v)
        yield edge
        late = sorted(srv.tick_lateness)
        clock = GaugeMetricFamily("duplexbot_sip_media_clock_late_seconds", "lateness of the 20 ms media clock "
                                  "over the last minute", labels=["quantile"])
        for q in (0.5, 0.99):
            clock.add_metric([str(q)], late[min(len(late) - 1, int(q * len(late)))] if late else 0.0)
        yield clock
        drops = srv.kernel_drops()
        if drops is not None:
            yield CounterMetricFamily("duplexbot_sip_udp_kernel_drops", "datagrams the kernel dropped on the SIP "
                                      "UDP socket (receive buffer full)", value=drops)
        udp_stats = srv.udp_stats()
        udp = CounterMetricFamily("duplexbot_sip_udp", "SIP UDP listener: datagrams received, reads, queued behind "
                                  "probes and in-dialog requests, dropped from a full queue or stale, replies "
                                  "dropped on a full send buffer", labels=["what"])
        for k, v in sorted(udp_stats.items()):
            if k not in ("largest_read", "backlog"):
                udp.add_metric([k], v)
        yield udp
        yield GaugeMetricFamily("duplexbot_sip_udp_backlog", "datagrams queued for call set-up on the SIP UDP "
                                "listener", value=udp_stats.get("backlog", 0))
        reg = GaugeMetricFamily("duplexbot_sip_registered", "registration with the trunk", labels=["aor"])
        for aor, ok in srv.registrations.items():
            reg.add_metric([aor], 1.0 if ok else 0.0)
        yield reg


_COLLECTOR = _SipCollector()
try:
    from prometheus_client import REGISTRY

    REGISTRY.register(_COLLECTOR)
except (ImportError, ValueError):   # no prometheus_client, or registered already
    pass


def setup(app: web.Application, runtime: Runtime) -> None:
    settings = runtime.settings.sip  # parsed once by Settings.from_env (sip/config.py)
    if not settings.enabled:
        return
    token = settings.call_token
    tasks: set[asyncio.Task[None]] = set()
    controller = runtime.admission

    async def run_call(call: SipCall) -> None:
        from ..transports.sip import SipTransport

        await runtime.calls.run(SipTransport(call))

    async def on_startup(app: web.Application) -> None:
        from sip import SipServer

        from ..transports.sip import SipAdmission

        server = await SipServer(settings.server, run_call, SipAdmission(controller)).start()
        app[SIP_SERVER_KEY] = server
        _COLLECTOR.server = server
        if settings.registration is not None and settings.registrar_addr is not None:
            server.register(settings.registration, settings.registrar_addr)
            server.keepalive(settings.registrar_addr, settings.keepalive)

    async def on_cleanup(app: web.Application) -> None:
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server = app.get(SIP_SERVER_KEY)
        if server is not None:
            if _COLLECTOR.server is server:
                _COLLECTOR.server = None
            await server.close()

    def authorised(request: web.Request) -> bool:
        if token:
            return hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode())
        try:
            return ipaddress.ip_address(request.remote or "").is_loopback
        except ValueError:
            return False

    async def place_call(request: web.Request) -> web.Response:
        from sip.message import parse_uri

        if not authorised(request):
            return web.json_response({"error": "not allowed"}, status=403)
        try:
            body = await request.json()
            to = str(body["to"])
            uri = parse_uri(to)
            via = str(body.get("via") or f"{uri.host}:{uri.port or 5060}")
            host, _, port = via.rpartition(":")
            dest = (str(ipaddress.ip_address(host)), int(port))
            timeout = float(body.get("timeout", 30))
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "expected JSON {\"to\": \"sip:user@1.2.3.4[:port]\", "
                                               "\"via\": \"ip:port\" (needed when the URI host is a name)}"},
                                     status=400)
        if uri.scheme not in ("sip", "sips"):
            return web.json_response({"error": "'to' must be a sip: URI"}, status=400)
        # an outbound call needs the engine as much as an inbound one: it holds an admission slot too
        slot = "out-" + secrets.token_hex(8)
        decision = controller.admit(slot, "sip", asyncio.get_running_loop().time())
        if not decision.admitted:
            return web.json_response({"error": f"this worker cannot take another call ({decision.reason})",
                                      "retry_after": decision.retry_after}, status=503,
                                     headers={"Retry-After": str(decision.retry_after)})

        def release(_task: asyncio.Task[None] | None = None) -> None:
            controller.release(slot, "sip")
        try:
            call = await app[SIP_SERVER_KEY].call(to, dest, timeout=min(timeout, 120))
        except ConnectionError as e:
            release()
            return web.json_response({"error": str(e), "retryable": True}, status=502)
        except BaseException:
            release()
            raise
        task = asyncio.create_task(run_call(call))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(release)
        return web.json_response({"call_id": call.call_id, "to": to})

    app.router.add_post("/sip/calls", place_call)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
