"""/healthz and Prometheus /metrics."""
from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

_STARTED = time.time()


class _EngineCollector:
    """Reads live engine numbers at scrape time (no bookkeeping on the audio path)."""

    def __init__(self):
        self.runtime = None

    def collect(self):
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
        yield CounterMetricFamily("duplexbot_asr_calls", "ASR transcriptions", value=getattr(asr, "calls", 0))
        yield CounterMetricFamily("duplexbot_asr_seconds", "time in ASR", value=getattr(asr, "seconds", 0.0))
        watch = rt.store_watch
        if watch is not None:
            yield GaugeMetricFamily("duplexbot_state_store_up", "1 while the call store answers",
                                    value=1 if watch.health.status.ok else 0)
            if watch.supervisor is not None:
                yield CounterMetricFamily("duplexbot_state_store_restarts", "restarts of the embedded store",
                                          value=watch.supervisor.restarts)


_COLLECTOR = _EngineCollector()
REGISTRY.register(_COLLECTOR)


def setup(app: web.Application, runtime) -> None:
    _COLLECTOR.runtime = runtime

    async def healthz(request: web.Request) -> web.Response:
        """200 `"status": "ok"`, or 503 `"status": "degraded"` while the call store is unreachable
        (calls go on, their records wait in memory; `store` says why, since when, and how much is
        held). `state` stays the backend kind ("redis" or "off")."""
        body = {"status": "ok", "policy": runtime.policy_name, "live_calls": len(runtime.calls.live()),
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
