"""Twilio's side of a call, simulated over real sockets (for tests and `duplexbot bench twilio`).

`TwilioPeer` does what Twilio does for one phone call: posts the signed voice webhook, reads the
TwiML, opens the `<Stream>` WebSocket, sends `connected` and `start` (with the `<Parameter>`s), then
streams the caller's audio as `media` frames every 20 ms in real time (silence when the caller is
quiet, as Twilio does), and plays what the bot sends the way Twilio does: in order, at real time,
echoing each `mark` once the audio before it has played, and on `clear` dropping what is queued
and echoing every pending mark at once. Every frame is built with `codec`, i.e. in the exact
layout of Twilio's documentation.

The player is a model computed from arrival times (no timer jitter of our own): a frame starts
playing when it arrives or when the previous one ends, whichever is later. A frame that arrives
after the previous one ended, within a burst of bot speech, is *late*: the caller hears a gap.
"""
from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable

import aiohttp
import numpy as np

from ..audio import ulaw_decode, ulaw_encode
from ..transports.twilio import codec
from ..transports.twilio.signature import sign_request

FRAME = 160
FRAME_S = 0.02
SILENCE = b"\xff" * FRAME
VOICED = 1000  # a caller frame whose peak exceeds this carries speech (TTS leading silence does not)
BURST_GAP = 0.3  # a silence longer than this between bot frames starts a new burst (not lateness)


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass
class Utterance:
    """Caller speech queued with `say()`; the times are filled in as its frames go out."""
    pcm: np.ndarray
    first_sent: float | None = None
    first_frame: int | None = None  # how many caller frames had gone out before it (x 20 ms: the server's stream time)
    last_sent: float | None = None
    voiced_from: float | None = None  # when the first frame with speech in it went out (the onset)
    voiced_until: float | None = None  # when the last frame with speech in it had gone out
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class HeardFrame:
    start: float  # when the caller starts hearing it
    pcm: np.ndarray  # int16, 160 samples

    @property
    def end(self) -> float:
        return self.start + FRAME_S


class TwilioPeer:
    def __init__(self, http_base: str, auth_token: str, public_base: str | None = None, *,
                 account_sid: str | None = None, call_sid: str | None = None, caller: str = "+15550100001",
                 callee: str = "+15550100002", clock: Callable[[], float] = time.monotonic):
        self.http_base = http_base.rstrip("/")
        self.public_base = (public_base or http_base).rstrip("/")
        self.auth_token = auth_token
        self.account_sid = account_sid or new_sid("AC")
        self.call_sid = call_sid or new_sid("CA")
        self.stream_sid = new_sid("MZ")
        self.caller, self.callee = caller, callee
        self.clock = clock
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.twiml = ""
        self.stream_url = ""
        self.parameters: dict[str, str] = {}
        self._seq = 0
        self._chunk = 0
        self._queue: list[Utterance] = []
        self._offset = 0
        self._tasks: list[asyncio.Task] = []
        self._changed = asyncio.Event()
        # what Twilio observed
        self.frames_sent = 0
        self.media_in = 0
        self.heard: list[HeardFrame] = []
        self.arrivals: list[float] = []
        self.clears: list[float] = []
        self.marks_in: list[tuple[str, float]] = []  # marks the bot sent, on arrival
        self.marks_echoed: list[tuple[str, float]] = []
        self.late: list[float] = []  # gaps (seconds) the caller heard inside bursts of bot speech
        self.bursts: list[float] = []  # start times of bursts of bot speech
        self.unexpected: list[str] = []  # frames from the bot we could not parse
        self.close_code: int | None = None
        self.closed = asyncio.Event()
        self._play_end = 0.0
        self._after_clear = False
        self._pending_marks: list[tuple[float, str]] = []  # (due, name)

    # ------------------------------------------------------------ call set-up

    async def webhook(self, session: aiohttp.ClientSession, signature: str | None = "sign",
                      extra: dict[str, str] | None = None, query: str = "") -> aiohttp.ClientResponse:
        """POST the voice webhook as Twilio would (signed over the public URL), at the voice URL
        with `query` ("expect_digits=8") when given, as a Voice URL configured with one is."""
        params = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": self.call_sid,
                  "CallStatus": "ringing", "Called": self.callee, "Caller": self.caller, "Direction": "inbound",
                  "From": self.caller, "To": self.callee, **(extra or {})}
        headers = {}
        path = "/twilio/voice" + (f"?{query}" if query else "")
        if signature == "sign":
            headers["X-Twilio-Signature"] = sign_request(self.auth_token, self.public_base + path, params)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        r = await session.post(self.http_base + path, data=params, headers=headers,
                               timeout=aiohttp.ClientTimeout(total=10))
        self.twiml = await r.text()
        stream = ET.fromstring(self.twiml).find("./Connect/Stream") if r.status == 200 else None
        if stream is not None:  # (else: refused, or other TwiML such as <Reject>)
            self.stream_url = stream.get("url", "")
            self.parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
        return r

    async def open(self, session: aiohttp.ClientSession, url: str | None = None, *, start: bool = True,
                   parameters: dict[str, str] | None = None) -> None:
        """Open the media WebSocket, send `connected` and (unless start=False) `start`."""
        url = url or self.stream_url
        self.ws = await session.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=5), max_msg_size=1 << 20)
        await self.send(codec.Connected())
        if start:
            await self.send_start(parameters if parameters is not None else self.parameters)
        self._tasks = [asyncio.ensure_future(self._recv_loop()), asyncio.ensure_future(self._send_loop())]

    async def dial(self, session: aiohttp.ClientSession) -> None:
        r = await self.webhook(session)
        if r.status != 200 or not self.stream_url:
            raise RuntimeError(f"voice webhook answered {r.status}: {self.twiml}")
        await self.open(session)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _socket(self) -> aiohttp.ClientWebSocketResponse:
        if self.ws is None:
            raise ConnectionError("the media WebSocket is not open (open() first)")
        return self.ws

    async def send(self, msg: codec.InboundMessage) -> None:
        await self._socket().send_str(codec.encode(msg))

    async def send_start(self, parameters: dict[str, str]) -> None:
        await self.send(codec.Start(self._next_seq(), self.stream_sid, self.account_sid, self.call_sid,
                                    ("inbound",), codec.MediaFormat(), dict(parameters)))

    async def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            await self._socket().send_bytes(data)
        else:
            await self._socket().send_str(data)

    async def dtmf(self, digit: str) -> None:
        await self.send(codec.Dtmf(self._next_seq(), self.stream_sid, digit))

    # ------------------------------------------------------------ caller audio

    def say(self, pcm8k: np.ndarray) -> Utterance:
        """Queue caller speech (int16 at 8 kHz); it goes out frame by frame in real time."""
        u = Utterance(np.asarray(pcm8k, np.int16))
        self._queue.append(u)
        return u

    def _next_frame(self, now: float) -> bytes:
        while self._queue:
            u = self._queue[0]
            chunk = u.pcm[self._offset:self._offset + FRAME]
            if chunk.size == 0:
                self._queue.pop(0)
                self._offset = 0
                continue
            if u.first_sent is None:
                u.first_sent, u.first_frame = now, self.frames_sent
            self._offset += FRAME
            if chunk.size < FRAME:
                chunk = np.concatenate([chunk, np.zeros(FRAME - chunk.size, np.int16)])
            if int(np.abs(chunk.astype(np.int32)).max()) > VOICED:
                if u.voiced_from is None:
                    u.voiced_from = now
                u.voiced_until = now + FRAME_S
            if self._offset >= u.pcm.size:
                u.last_sent = now
                u.done.set()
                self._queue.pop(0)
                self._offset = 0
            return ulaw_encode(chunk)
        return SILENCE

    async def _send_loop(self) -> None:
        t0 = self.clock()
        k = 0
        while self.ws is not None and not self.ws.closed:
            now = self.clock()
            payload = self._next_frame(now)
            self._chunk += 1
            try:
                await self.send(codec.Media(self._next_seq(), self.stream_sid, "inbound", self._chunk,
                                            int(round((now - t0) * 1000)), payload))
            except (ConnectionError, RuntimeError):
                break
            self.frames_sent += 1
            self._echo_due_marks(now)
            k += 1
            await asyncio.sleep(max(0.0, t0 + k * FRAME_S - self.clock()))

    # ------------------------------------------------------------ bot audio

    def _echo_due_marks(self, now: float) -> None:
        while self._pending_marks and self._pending_marks[0][0] <= now:
            _, name = self._pending_marks.pop(0)
            asyncio.ensure_future(self._echo(name))

    async def _echo(self, name: str) -> None:
        self.marks_echoed.append((name, self.clock()))
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.send(codec.Mark(self._next_seq(), self.stream_sid, name))

    async def _recv_loop(self) -> None:
        ws = self._socket()
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                now = self.clock()
                try:
                    out = codec.parse_outbound(msg.data)
                except codec.CodecError:
                    self.unexpected.append(msg.data[:200])
                    continue
                if out.stream_sid != self.stream_sid:
                    self.unexpected.append(msg.data[:200])
                    continue
                if isinstance(out, codec.OutMedia):
                    self._play(out.payload, now)
                elif isinstance(out, codec.OutMark):
                    self.marks_in.append((out.name, now))
                    self._pending_marks.append((max(now, self._play_end), out.name))
                elif isinstance(out, codec.Clear):
                    self.clears.append(now)
                    self.heard = [h for h in self.heard if h.start < now]
                    self._play_end = now
                    self._after_clear = True
                    pending, self._pending_marks = self._pending_marks, []
                    for _, name in pending:  # a clear sends every pending mark back at once
                        await self._echo(name)
                self._changed.set()
        finally:
            self.close_code = ws.close_code
            self.closed.set()
            self._changed.set()

    def _play(self, payload: bytes, now: float) -> None:
        self.media_in += 1
        self.arrivals.append(now)
        pcm = ulaw_decode(payload).copy()
        for i in range(0, len(pcm), FRAME):
            if self._play_end >= now:
                start = self._play_end
            else:
                gap = now - self._play_end
                if self.heard and gap < BURST_GAP and not self._after_clear:
                    self.late.append(gap)
                else:
                    self.bursts.append(now)
                start = now
            self._after_clear = False
            frame = pcm[i:i + FRAME]
            self.heard.append(HeardFrame(start, frame))
            self._play_end = start + len(frame) / 8000

    # ------------------------------------------------------------ observations

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (bounded) until `predicate()` holds; re-checked on every frame from the bot and every 50 ms."""
        deadline = self.clock() + timeout
        while not predicate():
            left = deadline - self.clock()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(0.05, left))
            except asyncio.TimeoutError:
                pass
        return True

    def heard_audio(self, t0: float = 0.0, t1: float = float("inf"), threshold: int = 300) -> np.ndarray:
        """What the caller heard of the bot between t0 and t1, int16 at 8 kHz (gaps left out)."""
        frames = [h.pcm for h in self.heard if t0 <= h.start < t1]
        return np.concatenate(frames) if frames else np.zeros(0, np.int16)

    def first_voiced(self, after: float, threshold: int = 300) -> float | None:
        """When the caller first heard non-silent bot audio after `after`."""
        for h in self.heard:
            if h.start >= after and int(np.abs(h.pcm.astype(np.int32)).max()) > threshold:
                return h.start
        return None

    def audible_until(self, after: float, threshold: int = 300) -> float:
        """When bot audio heard after `after` stopped (clears cut the frame playing at that moment)."""
        end = after
        for h in self.heard:
            if h.end > after and int(np.abs(h.pcm.astype(np.int32)).max()) > threshold:
                cut = min((c for c in self.clears if h.start < c < h.end), default=h.end)
                end = max(end, cut)
        return end

    # ------------------------------------------------------------ the end

    async def hang_up(self) -> None:
        """The caller hangs up: Twilio sends `stop` and closes the socket."""
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send(codec.Stop(self._next_seq(), self.stream_sid, self.account_sid, self.call_sid))
        await self.close()

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []
