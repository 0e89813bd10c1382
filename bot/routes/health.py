"""/healthz and Prometheus /metrics."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from ..runtime import Runtime

_STARTED = time.time()


class _EngineCollector:
    """Reads live engine numbers at scrape time (no bookkeeping on the audio path)."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None

    def collect(self) -> Iterator[Metric]:
        rt = self.runtime
        if rt is None:
            return
        yield GaugeMetricFamily("duplexbot_live_calls", "calls in progress on this worker", value=len(rt.calls.live()))
        yield CounterMetricFamily("duplexbot_calls_finished", "calls finished on this worker", value=rt.calls.finished)
        batches = CounterMetricFamily("duplexbot_inference_batches", "batched ONNX calls", labels=["model"])
        items = CounterMetricFamily("duplexbot_inference_items", "chunks inferred", labels=["model"])
        secs = CounterMetricFamily("duplexbot_inference_seconds", "time in batched inference", labels=["model"])
        errs = CounterMetricFamily("duplexbot_inference_errors", "failed inference batches", labels=["model"])
        for name, st in rt.services.scheduler.stats.items():
            batches.add_metric([name], st.batches)
            items.add_metric([name], st.items)
            secs.add_metric([name], st.seconds)
            errs.add_metric([name], st.errors)
        yield from (batches, items, secs, errs)
        asr = rt.services.asr
        yield CounterMetricFamily("duplexbot_asr_calls", "ASR transcriptions", value=asr.calls)
        yield CounterMetricFamily("duplexbot_asr_seconds", "time in ASR", value=asr.seconds)
        watch = rt.store_watch
        if watch is not None:
            yield GaugeMetricFamily("duplexbot_state_store_up", "1 while the call store answers",
                                    value=1 if watch.health.status.ok else 0)
            if watch.supervisor is not None:
                yield CounterMetricFamily("duplexbot_state_store_restarts", "restarts of the embedded store",
                                          value=watch.supervisor.restarts)


_COLLECTOR = _EngineCollector()
REGISTRY.register(_COLLECTOR)


def setup(app: web.Application, runtime: Runtime) -> None:
    _COLLECTOR.runtime = runtime

    async def healthz(request: web.Request) -> web.Response:
        """200 `"status": "ok"`, or 503 `"status": "degraded"` while the call store is unreachable
        (calls go on, their records wait in memory; `store` says why, since when, and how much is
        held). `state` stays the backend kind ("redis" or "off")."""
        body: dict[str, Any] = {"status": "ok", "policy": runtime.policy_name, "live_calls": len(runtime.calls.live()),
                "uptime_s": round(time.time() - _STARTED, 1),
                "state": "redis" if runtime.state is not None else "off"}
        watch = runtime.store_watch
        if watch is not None:
            body["store"] = store = watch.report()
            if not store["ok"]:
                body["status"] = "degraded"
                return web.json_response(body, status=503)
        return web.json_response(body)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
