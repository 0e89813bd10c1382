"""Both channels' levels for the call timeline: the caller's and the bot's RMS level, ten samples a
second, on the call's stream time (the axis every engine event's `t` is on).

Levels are bounded and never part of the audit trail: one audio tap per live call (the session
calls it every 32 ms with the caller's chunk and the bot audio played over it) folds the audio
into 100 ms windows; each window is pushed to the pages watching the call (a bounded queue each,
oldest dropped) and kept in a compact ring (2 bytes per channel per sample: 30 min are 72 KB a
call). The bot's level is what the bot sent since the previous chunk (the playout's 16 kHz
reference, from its last read position), not the tap's bot frame: the tap pairs each caller chunk
with the bot audio at the same sample index, and the two clocks drift apart in a browser call on
a busy box (the caller's stream 0.4 s ahead of the bot's reads in one measured call, behind by
more than 1.5 s in another), where the tap holds zeros. Both levels are thus placed at the caller
stream time they happened at, like every event's `t`.

A worker keeps the rings of its last `ended_calls` ended calls for the ended-call timeline;
nothing is written to Redis, so another worker's ended calls show decisions only. During secure
input the engine calls no tap: the timeline shows a gap, never the caller's level.
"""
from __future__ import annotations

import asyncio
import logging
import math
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

import numpy as np
from aiohttp import web

from ..audio.frame import AudioFrame
from ..engine.port import CallInfo

log = logging.getLogger(__name__)

PERIOD = 0.1  # seconds per level sample: 10 Hz is enough to see a word, a pause and an overlap
FLOOR = -90.0  # dBFS of digital silence (and of a gap)
_SCALE = 10  # stored as int16 tenths of a dB


@dataclass(frozen=True)
class LevelSample:
    """One 100 ms window: its start on the call's stream time and each side's RMS level in dBFS."""
    t: float
    caller: float
    bot: float

    def to_dict(self) -> dict[str, float]:
        return {"t": round(self.t, 2), "caller": round(self.caller, 1), "bot": round(self.bot, 1)}


def dbfs(sum_squares: float, n: int) -> float:
    if n <= 0 or sum_squares <= 0:
        return FLOOR
    return max(FLOOR, 10 * math.log10(sum_squares / n / (32768.0 ** 2)))


class LevelMeter:
    """The audio tap: folds (caller, bot) frames into `period` windows and calls `on_sample` for
    each. Time comes from the frames' stream timestamps; a jump forward (secure input: no taps)
    is filled with FLOOR samples so the ring stays evenly spaced."""

    def __init__(self, on_sample: Callable[[LevelSample], None], period: float = PERIOD) -> None:
        self.on_sample = on_sample
        self.period = period
        self._n_bot = 0
        self._pos = 0  # samples seen at `_rate`, counted from `_t0`
        self._t0: float | None = None
        self._rate = 16000
        self._win = 0
        self._sq_caller = 0.0
        self._sq_bot = 0.0

    def __call__(self, caller: AudioFrame, bot: AudioFrame) -> None:
        if self._t0 is None:
            self._t0, self._rate = caller.timestamp, caller.sample_rate
        per = int(self.period * self._rate)
        expected = self._t0 + self._pos / self._rate
        if caller.timestamp > expected + self.period:  # a gap: close this window, fill the rest
            self._close(per)
            while self._t0 + self._pos / self._rate + self.period <= caller.timestamp:
                self.on_sample(LevelSample(self._t0 + self._pos / self._rate, FLOOR, FLOOR))
                self._pos += per
        a = caller.pcm.astype(np.float64)
        b = bot.pcm.astype(np.float64)  # the bot audio that went out while this caller chunk came in
        if len(b) != len(a):
            b = np.resize(b, len(a)) if len(b) else np.zeros(len(a))
        i = 0
        while i < len(a):
            take = min(per - self._win, len(a) - i)
            self._sq_caller += float(np.dot(a[i:i + take], a[i:i + take]))
            self._sq_bot += float(np.dot(b[i:i + take], b[i:i + take]))
            self._n_bot += take
            self._win += take
            i += take
            if self._win >= per:
                self._close(per)

    def _close(self, per: int) -> None:
        if self._win == 0 or self._t0 is None:
            return
        t = self._t0 + self._pos / self._rate
        self.on_sample(LevelSample(t, dbfs(self._sq_caller, self._win), dbfs(self._sq_bot, self._n_bot)))
        self._pos += per
        self._win = self._n_bot = 0
        self._sq_caller = self._sq_bot = 0.0


class CallLevels:
    """One call's level ring and its live subscribers."""

    def __init__(self, call_id: str, tenant: str, keep_samples: int, queue_size: int = 64) -> None:
        self.call_id = call_id
        self.tenant = tenant
        self.keep = keep_samples
        self.queue_size = queue_size
        self.t0: float | None = None  # stream time of the first kept sample
        self.caller = array("h")
        self.bot = array("h")
        self.samples = 0
        self.dropped = 0  # samples subscribers missed (slow page)
        self.ended = False
        self._subscribers: list[asyncio.Queue[LevelSample]] = []

    def add(self, s: LevelSample) -> None:
        if self.t0 is None:
            self.t0 = s.t
        self.caller.append(int(round(s.caller * _SCALE)))
        self.bot.append(int(round(s.bot * _SCALE)))
        self.samples += 1
        if len(self.caller) > self.keep + self.keep // 10:  # drop the oldest tenth at once (cheap)
            cut = len(self.caller) - self.keep
            del self.caller[:cut]
            del self.bot[:cut]
            self.t0 += cut * PERIOD
        for q in self._subscribers:
            if q.full():
                q.get_nowait()
                self.dropped += 1
            q.put_nowait(s)

    def subscribe(self) -> asyncio.Queue[LevelSample]:
        q: asyncio.Queue[LevelSample] = asyncio.Queue(self.queue_size)
        self._subscribers.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[LevelSample]) -> None:
        if q in self._subscribers:
            self._subscribers.remove(q)

    def series(self, last_seconds: float | None = None) -> dict[str, object]:
        """The kept levels: {t0, dt, caller: [dBFS...], bot: [...]} (all of them, or the last seconds)."""
        n = len(self.caller)
        start = 0 if last_seconds is None else max(0, n - int(last_seconds / PERIOD))
        t0 = None if self.t0 is None else round(self.t0 + start * PERIOD, 2)
        return {"t0": t0, "dt": PERIOD, "caller": [v / _SCALE for v in self.caller[start:]],
                "bot": [v / _SCALE for v in self.bot[start:]], "ended": self.ended}


class TappableCall(Protocol):
    @property
    def info(self) -> CallInfo: ...

    def add_audio_tap(self, cb: Callable[[AudioFrame, AudioFrame], None]) -> Callable[[], None]: ...


class LiveCalls(Protocol):
    def live(self) -> Iterable[TappableCall]: ...


@dataclass(frozen=True)
class LevelSettings:
    keep_seconds: float = 1800.0  # per call: 30 min of levels (72 KB)
    ended_calls: int = 50  # ended calls whose levels this worker keeps
    poll: float = 0.5  # seconds between looks for new calls (browser calls attach at once)


class LevelBoard:
    """Levels of this worker's calls: attached to each live call (at once for a browser call, within
    `poll` for the others), kept for the last `ended_calls` after they end."""

    def __init__(self, settings: LevelSettings = LevelSettings()) -> None:
        self.settings = settings
        self._live: dict[str, tuple[CallLevels, Callable[[], None]]] = {}
        self._ended: OrderedDict[str, CallLevels] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    def attach(self, call: TappableCall) -> CallLevels:
        cid = call.info.call_id
        got = self._live.get(cid)
        if got is not None:
            return got[0]
        levels = CallLevels(cid, call.info.tenant, int(self.settings.keep_seconds / PERIOD))
        remove = call.add_audio_tap(LevelMeter(levels.add))
        self._live[cid] = (levels, remove)
        return levels

    def get(self, call_id: str) -> CallLevels | None:
        got = self._live.get(call_id)
        return got[0] if got is not None else self._ended.get(call_id)

    def end(self, call_id: str) -> None:
        got = self._live.pop(call_id, None)
        if got is None:
            return
        levels, remove = got
        try:
            remove()
        except Exception:
            log.exception("levels: removing the tap of %s failed", call_id)
        levels.ended = True
        self._ended[call_id] = levels
        while len(self._ended) > self.settings.ended_calls:
            self._ended.popitem(last=False)

    def sync(self, calls: Iterable[TappableCall]) -> None:
        """Attach to every live call, and retire the ones that ended."""
        seen = set()
        for c in calls:
            seen.add(c.info.call_id)
            self.attach(c)
        for cid in [cid for cid in self._live if cid not in seen]:
            self.end(cid)

    async def run(self, calls: LiveCalls) -> None:
        while True:
            try:
                self.sync(list(calls.live()))
            except Exception:
                log.exception("levels: sync failed")
            await asyncio.sleep(self.settings.poll)

    def start(self, calls: LiveCalls) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self.run(calls))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for cid in list(self._live):
            self.end(cid)


BOARD_KEY = web.AppKey("duplexbot_levels", LevelBoard)


def board_for(app: web.Application, calls: LiveCalls) -> LevelBoard:
    """The app's one LevelBoard (created by whichever route module asks first), started with the app."""
    board = app.get(BOARD_KEY)
    if board is not None:
        return board
    board = LevelBoard()
    app[BOARD_KEY] = board

    async def start(app: web.Application) -> None:
        board.start(calls)

    async def stop(app: web.Application) -> None:
        await board.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return board
