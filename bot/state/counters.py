"""Process-wide Prometheus counters of the state layer, on the default registry (so `/metrics`
in `bot/routes/health.py` shows them with no wiring).

The names are fixed here, once: the writer, the liveness loops and the consumers import the
objects, never build their own. A loop that survives a bad item says so here, so "the writer
is alive but dropping" is visible from a scrape, not only from the log.
"""
from __future__ import annotations

from prometheus_client import Counter

_PREFIX = "duplexbot_state_"

EVENTS_WRITTEN = Counter(_PREFIX + "events_written", "Call events and records written to Redis")
EVENTS_BUFFERED = Counter(_PREFIX + "events_buffered", "Events held in memory while the store was unreachable")
EVENTS_DROPPED = Counter(_PREFIX + "events_dropped", "Events lost (buffer full, or quarantine itself failed)")
EVENTS_QUARANTINED = Counter(_PREFIX + "events_quarantined",
                             "Poisoned events (failed to serialise or write repeatedly) set aside")
HEARTBEAT_ERRORS = Counter(_PREFIX + "heartbeat_errors", "Failed heartbeat or reaper rounds (the loop retries)")
CONSUMER_ERRORS = Counter(_PREFIX + "consumer_errors", "Stream entries a consumer failed to handle")


def value(counter: Counter) -> float:
    """The counter's current total (for tests and the CLI), read through its public `collect()`."""
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                return float(sample.value)
    return 0.0
