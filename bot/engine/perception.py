"""A call's caller audio, from transport frames to model outputs, pipelined.

Each 32 ms chunk's VAD and turn-taking requests go to the process-wide scheduler the moment the
chunk is complete, and the outputs come back out in order (`next()`), one `Perceived` per chunk.
A call no longer waits for one chunk's round trip (scheduler, model thread, event loop) before it
asks about the next: with 40 calls that round trip was 13-44 ms at the median and 32-68 ms at p90,
longer than the chunk itself, so each call fell further behind real time (engine backlog p90 1.1 s)
on a machine with a third of its CPU idle. A call that is behind now has its waiting chunks in the
scheduler at once (one per batch, in order, since the models are recurrent) and catches up.

At most `depth` chunks are in flight per call; beyond that `feed()` waits, and the transport's
mailbox holds (and, when full, drops) the rest as before. DTMF takes its place in the same lane, so
a key press is still handled after the audio that preceded it.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from ..audio.frame import AudioFrame
from ..audio.history import AudioHistory
from ..audio.resample import Resampler
from ..policy.base import CHUNK_RATE, CHUNK_SAMPLES, ModelOutput
from .port import Dtmf

DEPTH = 8  # chunks in flight per call (256 ms of caller audio)


class Scheduler(Protocol):
    def submit(self, model: str, stream_id: str, x: np.ndarray) -> asyncio.Future[np.ndarray]: ...


@dataclass(frozen=True)
class Perceived:
    """One chunk of caller audio with what the models made of it."""
    start: int  # the chunk's first sample on the call's 16 kHz caller clock
    chunk: np.ndarray  # int16 caller audio
    bot: np.ndarray | None  # int16 bot audio the caller heard meanwhile (None: nobody asked for it)
    rms: float  # the chunk's level (full scale 1.0)
    bot_rms: float  # the bot audio's level (0.0 without it)
    vad: float = 0.0
    model: ModelOutput | None = None
    error: str = ""  # the inference failed: no outputs for this chunk

    @property
    def end(self) -> int:
        return self.start + len(self.chunk)


@dataclass
class _InFlight:
    start: int
    chunk: np.ndarray
    bot: np.ndarray | None
    rms: float
    bot_rms: float
    vad: asyncio.Future[np.ndarray]
    duplex: asyncio.Future[np.ndarray] | None


class Perception:
    def __init__(self, call_id: str, scheduler: Scheduler, heard: AudioHistory,
                 reference: Callable[[int, int], np.ndarray], needs_model: Callable[[], bool],
                 wants_bot: Callable[[], bool], depth: int = DEPTH) -> None:
        """`heard`: where caller chunks are kept (pushed as they are submitted); `reference(start, n)`:
        the bot audio at those samples; `needs_model()`: ask the turn-taking model too;
        `wants_bot()`: keep the bot reference for a chunk even without the model (audio taps)."""
        if depth < 1:
            raise ValueError(f"perception depth must be positive, got {depth}")
        self._call_id = call_id
        self._scheduler = scheduler
        self._heard = heard
        self._reference = reference
        self._needs_model = needs_model
        self._wants_bot = wants_bot
        self._lane: asyncio.Queue[_InFlight | Dtmf] = asyncio.Queue(maxsize=depth)
        self._resampler: Resampler | None = None
        self._pending = np.zeros(0, np.int16)
        self.chunks = 0  # chunks submitted

    def __len__(self) -> int:
        """Chunks and key presses submitted and not yet taken by `next()`."""
        return self._lane.qsize()

    async def feed(self, frame: AudioFrame) -> None:
        """Resample a caller frame to 16 kHz and submit every chunk it completes."""
        if self._resampler is None or self._resampler.src_rate != frame.sample_rate:
            self._resampler = Resampler(frame.sample_rate, CHUNK_RATE)
        pcm = self._resampler.process(frame.pcm)
        self._pending = np.concatenate([self._pending, pcm]) if self._pending.size else pcm
        while self._pending.size >= CHUNK_SAMPLES:
            chunk, self._pending = self._pending[:CHUNK_SAMPLES], self._pending[CHUNK_SAMPLES:]
            await self._lane.put(self._submit(chunk))

    async def key(self, d: Dtmf) -> None:
        await self._lane.put(d)

    def _submit(self, chunk: np.ndarray) -> _InFlight:
        start = self._heard.push(chunk)
        self.chunks += 1
        model = self._needs_model()
        bot = self._reference(start, CHUNK_SAMPLES) if (model or self._wants_bot()) else None
        x = chunk.astype(np.float32) / 32768.0
        bot_f = bot.astype(np.float32) / 32768.0 if bot is not None else None
        rms = float(np.sqrt(np.mean(x * x)))
        bot_rms = float(np.sqrt(np.mean(bot_f * bot_f))) if bot_f is not None else 0.0
        # both models are asked at once: they run side by side, in the same tick
        vad = self._scheduler.submit("vad", self._call_id, x)
        duplex = None
        if model and bot_f is not None:
            duplex = self._scheduler.submit("duplex", self._call_id, np.stack([x, bot_f]))
        return _InFlight(start, chunk, bot, rms, bot_rms, vad, duplex)

    async def next(self) -> Perceived | Dtmf:
        """The oldest chunk, once its models have answered (or a key press, in its place). Call
        `done()` when it has been handled."""
        item = await self._lane.get()
        if isinstance(item, Dtmf):
            return item
        try:
            vad = float(np.asarray(await item.vad).reshape(-1)[0])
            model = None
            if item.duplex is not None:
                heads = np.asarray(await item.duplex).reshape(-1)
                model = ModelOutput(*[float(h) for h in heads[:5]])
        except RuntimeError as e:  # a failed batch: this chunk has no outputs, the next ones may
            if item.duplex is not None:
                item.duplex.cancel()  # (a failed VAD batch leaves it unread)
            return Perceived(item.start, item.chunk, item.bot, item.rms, item.bot_rms, error=str(e))
        return Perceived(item.start, item.chunk, item.bot, item.rms, item.bot_rms, vad, model)

    def done(self) -> None:
        self._lane.task_done()

    def close(self) -> None:
        """The call is over: whatever is still in flight is never asked for."""
        while not self._lane.empty():
            item = self._lane.get_nowait()
            self._lane.task_done()
            if isinstance(item, _InFlight):
                for f in (item.vad, item.duplex):
                    if f is not None:
                        f.cancel()

    async def drained(self) -> None:
        """Until every chunk and key press submitted so far has been handled."""
        await self._lane.join()
