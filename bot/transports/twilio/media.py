"""The asyncio edge of a Twilio media stream: an aiohttp WebSocket driving `MediaStream`, as a `Transport`.

Three tasks per call, all owned here and cancelled when the call ends:
- the reader: WebSocket frames -> `MediaStream.receive` -> caller audio / DTMF / hang-up into the
  engine's inbound mailbox (`inbox`; its drops are also counted as `engine_slow`), playback
  confirmations into the bot audio source;
- the pacer: every 20 ms (with `lead` of slack) pulls a frame from the source and queues it;
- the writer: sends queued frames, control (`clear`) always before media.

`clear()` is synchronous: it drops queued media and puts `clear` first in line, so it never waits
behind audio (at most behind the one frame being written on the socket at that instant).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Awaitable, Callable

import aiohttp
import numpy as np
from aiohttp import web

from ...audio.frame import AudioFrame
from ...engine.mailbox import InboundMailbox
from ...engine.port import EXPECT_DIGITS, BotAudioSource, CallInfo, Dtmf, Hangup, InboundItem
from . import metrics
from .decimate import Decimator
from .rest import TwilioApiError, TwilioRest
from .settings import TwilioSettings
from .signature import StreamTokens, TokenError
from .stream import (
    FRAME_SAMPLES,
    CallerAudio,
    DtmfDigit,
    MediaStream,
    PlaybackConfirmed,
    StreamEvent,
    StreamStarted,
    StreamStopped,
)
from .webhook import CALLEE_PARAM, CALLER_PARAM, EXPECT_DIGITS_PARAM, TOKEN_PARAM, dial_twiml, parse_expect_digits

log = logging.getLogger(__name__)

MAX_WS_MESSAGE = 1024 * 1024  # aiohttp kills the socket above this; 64 KiB..1 MiB frames are dropped, counted
CLOSE_POLICY = 1008  # WebSocket close code: policy violation
CLOSE_TRY_AGAIN = 1013


class StreamRegistry:
    """Live streams of this process by CallSid: a CallSid gets one live stream at a time."""

    def __init__(self) -> None:
        self._live: dict[str, "TwilioMediaTransport | None"] = {}

    def claim(self, call_sid: str) -> bool:
        if call_sid in self._live:
            return False
        self._live[call_sid] = None
        metrics.LIVE_STREAMS.set(len(self._live))
        return True

    def attach(self, call_sid: str, transport: "TwilioMediaTransport") -> None:
        self._live[call_sid] = transport

    def release(self, call_sid: str) -> None:
        self._live.pop(call_sid, None)
        metrics.LIVE_STREAMS.set(len(self._live))

    def get(self, call_sid: str) -> "TwilioMediaTransport | None":
        return self._live.get(call_sid)

    def __len__(self) -> int:
        return len(self._live)


class TwilioMediaTransport:
    """One call over a bidirectional Media Stream. Implements `bot.engine.port.Transport`."""

    reports_playback = True

    def __init__(self, ws: web.WebSocketResponse, core: MediaStream, info: CallInfo, settings: TwilioSettings,
                 rest: TwilioRest | None = None, clock: Callable[[], float] = time.monotonic):
        self.info = info
        self.ws = ws
        self.core = core
        self.settings = settings
        self.rest = rest
        self.clock = clock
        self.stats = core.stats
        # bot audio is pulled at `read_rate` (8 kHz by default; a higher one is decimated here, one
        # 20 ms frame at a time); positions reported to the source are counted at that rate
        self.output_rate = settings.read_rate
        self._read_samples = settings.read_rate // 50
        self._down = Decimator(settings.read_rate) if settings.read_rate != 8000 else None
        self.transferred_to = ""
        self.inbox = InboundMailbox(settings.inbound_queue)
        self._source: BotAudioSource | None = None
        self._control: deque[str] = deque()
        self._media: deque[str] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        self._marks_done = asyncio.Event()
        self._writer = self._spawn(self._write_loop(), "writer")

    def _spawn(self, coro: Awaitable, name: str) -> asyncio.Task:
        t = asyncio.ensure_future(coro)
        t.set_name(f"twilio-{name}-{self.info.call_id[-8:]}")
        self._tasks.append(t)
        return t

    # ------------------------------------------------------------ inbound

    def feed(self, frame: str | bytes) -> None:
        """One text frame from the socket: parse, count drops, hand the results on."""
        before = dict(self.core.stats.dropped)
        self._dispatch(self.core.receive(frame, self.clock()))
        for reason, n in self.core.stats.dropped.items():
            if n != before.get(reason, 0):
                metrics.DROPPED.labels(reason).inc(n - before.get(reason, 0))

    def _dispatch(self, events: list[StreamEvent]) -> None:
        for ev in events:
            if isinstance(ev, CallerAudio):
                metrics.FRAMES_IN.inc()
                self._put(AudioFrame(ev.pcm, 8000, ev.timestamp))
            elif isinstance(ev, DtmfDigit):
                self._put(Dtmf(ev.digit))
            elif isinstance(ev, PlaybackConfirmed):
                if self._source is not None:
                    self._source.confirm_played(self._source_pos(ev.samples))
                if not self.core.playing:
                    self._marks_done.set()
            elif isinstance(ev, StreamStopped):
                if self.transferred_to:
                    reason = "transferred"
                else:  # Twilio said stop (the caller hung up), or the socket went away without a word
                    reason = "remote" if ev.reason == "stop" else "connection_lost"
                self._put(Hangup(reason))

    def _put(self, item: InboundItem) -> None:
        if self.inbox.put(item):  # the engine is not keeping up: the oldest caller audio went
            self.core.drop("engine_slow")
            metrics.DROPPED.labels("engine_slow").inc()

    async def read_loop(self) -> None:
        """Read the socket until it closes or Twilio says stop."""
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.feed(msg.data)
                    if self.core.state == "stopped":
                        break
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self.core.drop("binary")
                    metrics.DROPPED.labels("binary").inc()
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    log.info("twilio stream %s: socket error %s", self.info.call_id, self.ws.exception())
                    break
        finally:
            self._dispatch(self.core.closed())
            self._marks_done.set()

    async def receive(self) -> InboundItem:
        return await self.inbox.get()  # after the hang-up, every call says so again

    # ------------------------------------------------------------ outbound

    def start_output(self, source: BotAudioSource) -> None:
        self._source = source
        source.bursts_play_at_once()  # idle frames are not sent: Twilio plays each burst on arrival
        self._spawn(self._pace_loop(source), "pacer")

    async def _pace_loop(self, source: BotAudioSource) -> None:
        core = self.core
        underruns = core.stats.underruns
        while core.state == "streaming" and not self._closed:
            now = self.clock()
            while core.frames_due(now):  # re-asked after each read: a new burst refills the lead at once
                frame = source.read(self._read_samples, self.output_rate)
                out = core.frame_read(self._to_8k(frame.pcm), source.is_speaking(), now)
                if out:
                    self._media.extend(out)
                    self._wake.set()
            for ev in core.idle_confirmation():
                source.confirm_played(self._source_pos(ev.samples))
            if core.stats.underruns != underruns:
                metrics.UNDERRUNS.inc(core.stats.underruns - underruns)
                underruns = core.stats.underruns
            delay = core.next_due(self.clock()) - self.clock()
            await asyncio.sleep(max(0.0, delay))

    def _source_pos(self, samples_8k: int) -> int:
        return samples_8k // FRAME_SAMPLES * self._read_samples

    def _to_8k(self, pcm: np.ndarray) -> np.ndarray:
        if self._down is None:
            return pcm
        out = self._down.process(pcm)
        if out.shape[0] != FRAME_SAMPLES:  # cannot happen for whole 20 ms reads; keep the frame size anyway
            out = np.resize(out, FRAME_SAMPLES) if out.size else np.zeros(FRAME_SAMPLES, np.int16)
        return out

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._control or self._media:
                if self.ws.closed:
                    self._control.clear()
                    self._media.clear()
                    break
                text = self._control.popleft() if self._control else self._media.popleft()
                try:
                    await self.ws.send_str(text)
                except (ConnectionError, RuntimeError) as e:  # closing transport
                    log.debug("twilio stream %s: send failed: %s", self.info.call_id, e)
                    self._control.clear()
                    self._media.clear()
                    break
                if text.startswith('{"event":"media"'):
                    metrics.FRAMES_OUT.inc()

    def clear(self) -> None:
        text = self.core.clear(self.clock())
        if text is None:
            return
        self._media.clear()
        self._control.append(text)
        self._wake.set()
        metrics.CLEARS.inc()
        if self._down is not None:  # no tail of the cut audio in the next frame
            self._down = Decimator(self.settings.read_rate)

    # ------------------------------------------------------------ call control

    async def transfer(self, target: str) -> bool:
        if self.rest is None:
            log.warning("twilio transfer of %s: REST API not configured", self.info.call_id)
            return False
        try:
            twiml = dial_twiml(target, self.settings.caller_id or self.info.callee)
        except ValueError as e:
            log.warning("twilio transfer of %s refused: %s", self.info.call_id, e)
            return False
        await self._wait_played(2.0)  # let the caller hear the end of "transferring you now"
        try:
            await self.rest.redirect(self.info.call_id, twiml)
        except TwilioApiError as e:
            log.warning("twilio transfer of %s failed: %s", self.info.call_id, e)
            return False
        self.transferred_to = target
        return True

    async def close(self, reason: str) -> None:
        """End our side: let queued bot audio finish playing (bounded), then close the socket.

        With `<Connect><Stream>`, Twilio moves on to the next TwiML verb when the socket closes;
        there is none, so the call ends (unless it was transferred: then the `<Dial>` goes on)."""
        if self._closed:
            return
        if reason not in ("barge_in", "error", "shutdown"):
            await self._wait_played(self.settings.lead + 2.0)
        self._closed = True
        await self._shutdown()
        if not self.ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 2.0)

    async def _wait_played(self, timeout: float) -> None:
        """Wait (bounded) until Twilio has played everything we sent (every mark echoed)."""
        if self.ws.closed or self.core.state != "streaming" or not self.core.playing:
            return
        self._marks_done.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._marks_done.wait(), timeout)

    async def _shutdown(self) -> None:
        me = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not me and not t.done()]
        # let the writer flush what is queued (a final clear or mark), briefly
        if (self._control or self._media) and not self.ws.closed:
            self._wake.set()
            for _ in range(50):
                if not (self._control or self._media):
                    break
                await asyncio.sleep(0.002)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


RunCall = Callable[[TwilioMediaTransport], Awaitable[None]]


async def serve_media_socket(request: web.Request, *, settings: TwilioSettings, tokens: StreamTokens,
                             registry: StreamRegistry, run_call: RunCall, rest: TwilioRest | None = None,
                             clock: Callable[[], float] = time.monotonic,
                             wall: Callable[[], float] = time.time) -> web.WebSocketResponse:
    """`GET /twilio/media`: accept the WebSocket, wait for a valid `start`, run the call to its end."""
    ws = web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE, heartbeat=None, autoping=True)
    await ws.prepare(request)
    core = MediaStream(lead=settings.lead, mark_every=settings.mark_every)
    start = None
    try:
        async with asyncio.timeout(settings.start_timeout):
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    core.drop("binary" if msg.type == aiohttp.WSMsgType.BINARY else "socket")
                    if msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                        break
                    continue
                for ev in core.receive(msg.data, clock()):
                    if isinstance(ev, StreamStarted):
                        start = ev.start
                if start is not None:
                    break
    except TimeoutError:
        pass
    for reason, n in core.stats.dropped.items():
        metrics.DROPPED.labels(reason).inc(n)
    if start is None:
        metrics.STREAMS.labels("no_start").inc()
        await ws.close(code=CLOSE_POLICY, message=b"no start")
        return ws
    params = start.custom_parameters
    caller, callee = params.get(CALLER_PARAM, ""), params.get(CALLEE_PARAM, "")
    try:
        tokens.redeem(params.get(TOKEN_PARAM, ""), start.call_sid, wall(), caller, callee)
    except TokenError as e:
        metrics.STREAMS.labels(f"token_{e.reason}").inc()
        log.warning("twilio stream for %s refused: token %s", start.call_sid, e.reason)
        await ws.close(code=CLOSE_POLICY, message=f"token {e.reason}".encode())
        return ws
    if len(registry) >= settings.max_streams:
        metrics.STREAMS.labels("full").inc()
        log.warning("twilio stream for %s refused: %d streams live (max_streams)", start.call_sid, len(registry))
        await ws.close(code=CLOSE_TRY_AGAIN, message=b"too many calls")
        return ws
    if not registry.claim(start.call_sid):
        metrics.STREAMS.labels("duplicate").inc()
        log.warning("twilio stream for %s refused: the call already has a live stream", start.call_sid)
        await ws.close(code=CLOSE_POLICY, message=b"call already streaming")
        return ws
    metrics.STREAMS.labels("accepted").inc()
    extra = {"stream_sid": start.stream_sid, "account_sid": start.account_sid}
    try:
        if expect := parse_expect_digits(params.get(EXPECT_DIGITS_PARAM)):
            extra[EXPECT_DIGITS] = str(expect)
    except ValueError as e:  # our own TwiML writes it, so only a forged start gets here
        core.drop("bad_expect_digits")
        metrics.DROPPED.labels("bad_expect_digits").inc()
        log.warning("twilio stream for %s: %s (ignored)", start.call_sid, e)
    info = CallInfo(call_id=start.call_sid, transport="twilio", caller=caller, callee=callee, extra=extra)
    transport = TwilioMediaTransport(ws, core, info, settings, rest, clock)
    registry.attach(start.call_sid, transport)
    reader = transport._spawn(transport.read_loop(), "reader")
    try:
        await run_call(transport)
    except Exception:
        log.exception("twilio call %s failed", start.call_sid)
    finally:
        await transport.close("ended")
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        registry.release(start.call_sid)
        log.info("twilio call %s ended: %s", start.call_sid, transport.stats.to_dict())
    return ws
