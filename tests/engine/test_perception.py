"""A call's chunks are pipelined through the scheduler: several in flight at once, outputs in order,
key presses in their place, at most `depth` waiting, nothing left in flight when the call ends."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bot.audio.frame import AudioFrame
from bot.audio.history import AudioHistory
from bot.engine.perception import Perceived, Perception
from bot.engine.port import Dtmf
from bot.engine.scheduler import InferenceScheduler, SchedulerSettings
from bot.policy.base import CHUNK_RATE, CHUNK_SAMPLES


class Mark:
    """A stand-in model whose output is each request's first sample, so order is visible; `gate`
    holds every batch until the test opens it."""

    def __init__(self, name: str, heads: int, fail_on: float | None = None):
        self.name = name
        self.heads = heads
        self.batches: list[list[float]] = []
        self.gate = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.fail_on = fail_on

    def run(self, ids, x):
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(self.gate.wait(), self.loop).result(timeout=10)
        first = x.reshape(len(ids), -1)[:, 0].astype(np.float64)
        self.batches.append([float(v) for v in first])
        if self.fail_on is not None and np.isclose(first, self.fail_on, atol=1e-4).any():
            raise ValueError("boom")
        return np.repeat(first[:, None], self.heads, axis=1)

    def drop(self, sid):
        pass


def _frame(k: int, rate: int = CHUNK_RATE) -> AudioFrame:
    """One chunk-long 16 kHz frame whose samples all read k/1000 of full scale."""
    return AudioFrame(np.full(CHUNK_SAMPLES, int(k * 32.768), np.int16), rate, 0.0)


async def _setup(depth=8, fail_on=None, model=True):
    vad, duplex = Mark("vad", 1, fail_on), Mark("duplex", 5)
    loop = asyncio.get_running_loop()
    vad.loop = duplex.loop = loop
    sched = InferenceScheduler([vad, duplex], SchedulerSettings(max_wait=0.001))
    await sched.start()
    sched.register("c1")
    heard = AudioHistory(10.0, CHUNK_RATE)
    ref = AudioHistory(10.0, CHUNK_RATE)
    p = Perception("c1", sched, heard, ref.read, lambda: model, lambda: False, depth=depth)
    return p, sched, vad, duplex, heard


async def test_chunks_are_in_flight_together_and_come_out_in_order():
    p, sched, vad, duplex, heard = await _setup()
    try:
        for k in range(1, 6):
            await p.feed(_frame(k))
        await p.key(Dtmf("5"))
        assert len(p) == 6 and heard.samples == 5 * CHUNK_SAMPLES  # all asked for, none answered yet
        vad.gate.set()
        duplex.gate.set()
        got = []
        for _ in range(6):
            item = await asyncio.wait_for(p.next(), 10)
            got.append(item)
            p.done()
        assert isinstance(got[-1], Dtmf) and got[-1].digit == "5"  # after the audio that preceded it
        chunks = [g for g in got if isinstance(g, Perceived)]
        assert [round(c.vad * 1000) for c in chunks] == [1, 2, 3, 4, 5]
        assert [c.start for c in chunks] == [k * CHUNK_SAMPLES for k in range(5)]
        assert all(c.model is not None and c.bot is not None and c.bot_rms == 0.0 for c in chunks)
        assert chunks[2].rms == pytest.approx(0.003, abs=1e-4)
        # one request of the stream per batch (the models are recurrent), in order
        assert [b for batch in vad.batches for b in batch] == pytest.approx([k / 1000 for k in range(1, 6)], abs=1e-4)
        assert all(len(b) == 1 for b in vad.batches)
        await asyncio.wait_for(p.drained(), 5)
    finally:
        await sched.close()


async def test_at_most_depth_chunks_wait_and_the_feeder_waits_for_room():
    p, sched, vad, duplex, _ = await _setup(depth=2, model=False)
    try:
        await p.feed(_frame(1))
        await p.feed(_frame(2))
        third = asyncio.ensure_future(p.feed(_frame(3)))
        await asyncio.sleep(0)
        assert not third.done() and len(p) == 2  # backpressure: the transport's mailbox holds the rest
        vad.gate.set()
        first = await asyncio.wait_for(p.next(), 10)
        p.done()
        await asyncio.wait_for(third, 5)
        assert isinstance(first, Perceived) and first.model is None and first.bot is None
        assert not duplex.batches  # no turn-taking model asked for: only the VAD ran
    finally:
        await sched.close()


async def test_a_failed_batch_fails_only_its_chunk():
    p, sched, vad, duplex, _ = await _setup(fail_on=0.002)
    vad.gate.set()
    duplex.gate.set()
    try:
        for k in (1, 2, 3):
            await p.feed(_frame(k))
        out = []
        for _ in range(3):
            out.append(await asyncio.wait_for(p.next(), 10))
            p.done()
        assert [bool(o.error) for o in out] == [False, True, False]
        assert "vad inference failed" in out[1].error and out[2].model is not None
    finally:
        await sched.close()


async def test_closing_cancels_what_is_still_in_flight():
    p, sched, vad, duplex, _ = await _setup()
    try:
        for k in (1, 2, 3):
            await p.feed(_frame(k))
        p.close()
        assert len(p) == 0
        await asyncio.wait_for(p.drained(), 1)
        vad.gate.set()
        duplex.gate.set()
        await p.feed(_frame(4))
        item = await asyncio.wait_for(p.next(), 10)
        p.done()
        assert isinstance(item, Perceived) and round(item.vad * 1000) == 4
        # the cancelled requests never reached a batch
        assert [b for batch in vad.batches for b in batch] == pytest.approx([0.004], abs=1e-4)
    finally:
        await sched.close()


async def test_frames_at_8_khz_are_resampled_into_16_khz_chunks():
    p, sched, vad, duplex, heard = await _setup(model=False)
    vad.gate.set()
    try:
        for _ in range(4):  # 4 x 20 ms at 8 kHz = 80 ms: two whole 32 ms chunks
            await p.feed(AudioFrame(np.zeros(160, np.int16), 8000, 0.0))
        assert p.chunks == 2 and heard.samples == 2 * CHUNK_SAMPLES
        with pytest.raises(ValueError):
            Perception("c1", sched, heard, heard.read, lambda: False, lambda: False, depth=0)
    finally:
        await sched.close()
