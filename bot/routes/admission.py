"""Prometheus numbers of the admission controller (bot/engine/admission.py), read at scrape time."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Iterator

from aiohttp import web
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..engine.admission import AdmissionController

if TYPE_CHECKING:
    from ..runtime import Runtime


class _AdmissionCollector:
    def __init__(self) -> None:
        self.controller: AdmissionController | None = None

    def collect(self) -> Iterator[Metric]:
        c = self.controller
        if c is None:
            return
        try:
            now = asyncio.get_running_loop().time()
        except RuntimeError:        # scraped off the loop (tests): the loop clock is time.monotonic
            import time
            now = time.monotonic()
        yield GaugeMetricFamily("duplexbot_admission_max_calls", "calls this process admits at most (every "
                                "transport together)", value=c.cap)
        yield GaugeMetricFamily("duplexbot_admission_live_calls", "calls holding an admission slot",
                                value=c.live(now))
        admitted = CounterMetricFamily("duplexbot_admission_admitted", "calls admitted", labels=["transport"])
        for transport, n in sorted(c.admitted.items()):
            admitted.add_metric([transport], n)
        yield admitted
        refused = CounterMetricFamily("duplexbot_admission_refused", "calls refused, by reason (capacity: at "
                                      "the cap; loop_lag: the event loop is late; engine_lag: calls' audio waits "
                                      "for the engine)", labels=["transport", "reason"])
        for (transport, reason), n in sorted(c.refused.items()):
            refused.add_metric([transport, reason], n)
        yield refused
        lag = GaugeMetricFamily("duplexbot_event_loop_lag_seconds", "event-loop delay: the last 100 ms sample "
                                "and the quantile the admission rule uses", labels=["stat"])
        lag.add_metric(["last"], c.last_lag())
        lag.add_metric([f"p{round(c.settings.lag_quantile * 100)}"], c.lag_quantile(now) or 0.0)
        yield lag
        yield GaugeMetricFamily("duplexbot_engine_backlog_seconds", "caller audio waiting for the engine on the "
                                "call furthest behind, sustained over the engine-lag rule's window (the least "
                                "of its samples)", value=c.backlog(now))


_COLLECTOR = _AdmissionCollector()
REGISTRY.register(_COLLECTOR)


def setup(app: web.Application, runtime: Runtime) -> None:
    _COLLECTOR.controller = runtime.admission


__all__ = ["setup"]
