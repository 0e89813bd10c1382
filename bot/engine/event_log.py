"""Every call's events as JSON lines in one local file (`DUPLEXBOT_EVENT_LOG=path`).

The call store keeps each call's trace in Redis for the supervisor; this log is for a bot run
without it (`--no-state`, benchmarks, local tuning): one line per event, the `to_dict()` wire form,
so the reason behind every end of turn, barge-in and hold of every call can be read afterwards
(`duplexbot bench phone` joins it to its samples). Lines are written as the events come (buffered,
flushed once a second at most); a failed write (disk full, file removed) is counted on /metrics and
logged once, never raised into the call.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import IO, Callable

from prometheus_client import Counter

from .events import Event

log = logging.getLogger(__name__)

WRITTEN = Counter("duplexbot_event_log_lines", "Events written to DUPLEXBOT_EVENT_LOG")
DROPPED = Counter("duplexbot_event_log_dropped", "Events DUPLEXBOT_EVENT_LOG could not write")


class EventLog:
    FLUSH_EVERY = 1.0  # seconds

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = open(self.path, "a", encoding="utf-8")
        self._clock = clock
        self._flushed = clock()
        self.written = 0
        self.dropped = 0

    def emit(self, event: Event) -> None:
        """A call's sink (CallManager adds it to every call)."""
        if self._file is None:
            self._drop()
            return
        try:
            self._file.write(json.dumps(event.to_dict(), default=str, separators=(",", ":")) + "\n")
            now = self._clock()
            if now - self._flushed >= self.FLUSH_EVERY:
                self._flushed = now
                self._file.flush()
        except (OSError, ValueError) as e:
            log.warning("event log %s failed (%s): further events are counted, not written", self.path, e)
            self._close_quietly()
            self._drop()
            return
        self.written += 1
        WRITTEN.inc()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except (OSError, ValueError):
                pass
            self._close_quietly()

    def _drop(self) -> None:
        self.dropped += 1
        DROPPED.inc()

    def _close_quietly(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except (OSError, ValueError):
                pass


def read_event_log(path: str | Path) -> dict[str, list[dict]]:
    """The events of a log by call id, in order (lines that do not parse are skipped)."""
    out: dict[str, list[dict]] = {}
    p = Path(path)
    if not p.exists():
        return out
    with open(p, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict) and isinstance(d.get("call_id"), str):
                out.setdefault(d["call_id"], []).append(d)
    return out
