"""Every call's events as JSON lines in one local file (`DUPLEXBOT_EVENT_LOG=path`).

The call store keeps each call's trace in Redis for the supervisor; this log is for a bot run
without it (`--no-state`, benchmarks, local tuning): one line per event, the `to_dict()` wire form,
so the reason behind every end of turn, barge-in and hold of every call can be read afterwards
(`duplexbot bench phone` joins it to its samples).

The event loop only puts the event on a bounded queue; a writer thread turns it into JSON and
writes it, so no file I/O ever runs on the loop. A full queue or a failed write or flush (disk
full, file removed) is counted on /metrics and logged once, never raised into the call; a line
counts as written only once a flush has put it on disk (the lines still in the buffer when a flush
fails are counted as dropped).

Open question: with the log on, `bench phone` at 20 calls sees 8-14 pacer underruns per 144-call
run (counted once per run since the bench stopped summing each kind's copy); with it off, none in
two warm runs (10 in a cold first run after boot). Writing from this thread instead of the loop did
not change that; the event loop is ~84 % busy at 20 calls on two cores, and the cause is not found.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
from pathlib import Path
from typing import IO

from prometheus_client import Counter

from .events import Event

log = logging.getLogger(__name__)

WRITTEN = Counter("duplexbot_event_log_lines", "Events written to DUPLEXBOT_EVENT_LOG")
DROPPED = Counter("duplexbot_event_log_dropped", "Events DUPLEXBOT_EVENT_LOG could not write")

_STOP = object()


class EventLog:
    MAX_QUEUED = 100_000  # events waiting for the writer; beyond, new ones are dropped and counted

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        self._queue: queue.Queue[object] = queue.Queue(self.MAX_QUEUED)
        self._failed = False
        self._closed = False
        self.written = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._write_loop, name="event-log", daemon=True)
        self._thread.start()

    def emit(self, event: Event) -> None:
        """A call's sink (CallManager adds it to every call): never blocks, never raises."""
        if self._closed or self._failed:
            self._drop()
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._drop()

    def close(self) -> None:
        """Write what is queued, then close the file (the runtime calls it once, at shutdown)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def flush(self) -> None:
        """Wait until every event emitted so far is written (tests, and readers of a live log)."""
        self._queue.join()

    def _write_loop(self) -> None:
        f = self._file
        pending = 0  # lines in the file's buffer: written only once a flush has put them on disk
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    break
                if self._failed:
                    self._drop()
                    continue
                assert isinstance(item, Event)
                try:
                    pending += 1
                    f.write(json.dumps(item.to_dict(), default=str, separators=(",", ":")) + "\n")
                    if self._queue.empty():
                        self._flushed(f, pending)
                        pending = 0
                except (OSError, ValueError) as e:
                    self._fail(e, pending)
                    pending = 0
            finally:
                self._queue.task_done()
        try:
            if pending and not self._failed:
                self._flushed(f, pending)
        except (OSError, ValueError) as e:
            self._fail(e, pending)
        try:
            f.close()
        except (OSError, ValueError):
            pass

    def _flushed(self, f: IO[str], pending: int) -> None:
        """Flush the file; the `pending` lines in its buffer are now written (raises if not)."""
        f.flush()
        self.written += pending
        WRITTEN.inc(pending)

    def _fail(self, e: Exception, lost: int) -> None:
        """A write or flush failed: the lines not yet on disk are lost (counted), and so is every
        later event."""
        log.warning("event log %s failed (%s): further events are counted, not written", self.path, e)
        self._failed = True
        for _ in range(lost):
            self._drop()

    def _drop(self) -> None:
        self.dropped += 1
        DROPPED.inc()


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
