import asyncio

import numpy as np
import pytest

from bot.engine.scheduler import InferenceScheduler, SchedulerSettings
from bot.engine.vad import SileroVad


class Recorder:
    name = "rec"

    def __init__(self, fail=False):
        self.batches = []
        self.dropped = []
        self.fail = fail

    def run(self, ids, x):
        if self.fail:
            raise ValueError("boom")
        self.batches.append(list(ids))
        return x.sum(axis=1, keepdims=True)

    def drop(self, sid):
        self.dropped.append(sid)


async def test_one_batched_call_for_all_live_streams():
    m = Recorder()
    s = InferenceScheduler([m], SchedulerSettings(max_wait=0.5))
    await s.start()
    ids = [f"c{i}" for i in range(16)]
    for i in ids:
        s.register(i)
    try:
        outs = await asyncio.wait_for(asyncio.gather(*[s.infer("rec", i, np.full(4, k, np.float32))
                                                       for k, i in enumerate(ids)]), 5)
        assert [float(o[0]) for o in outs] == [4.0 * k for k in range(16)]
        assert len(m.batches) == 1 and sorted(m.batches[0]) == sorted(ids)
        assert s.stats["rec"].max_batch == 16
    finally:
        await s.close()


async def test_a_failing_model_fails_its_requests_not_the_scheduler():
    s = InferenceScheduler([Recorder(fail=True)])
    await s.start()
    s.register("a")
    try:
        with pytest.raises(RuntimeError, match="rec inference failed"):
            await asyncio.wait_for(s.infer("rec", "a", np.zeros(4, np.float32)), 5)
        assert s.stats["rec"].errors == 1
        with pytest.raises(KeyError):
            await s.infer("nope", "a", np.zeros(4, np.float32))
    finally:
        await s.close()


def test_silero_batched_equals_one_by_one():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 4, 512)) * 0.1).astype(np.float32)
    a, b = SileroVad(), SileroVad()
    for step in range(3):
        batched = a.run(["p", "q", "r", "s"], x[step])
        single = np.concatenate([b.run([sid], x[step, i:i + 1]) for i, sid in enumerate("pqrs")])
        assert np.allclose(batched, single, atol=1e-4)
    with pytest.raises(ValueError, match="512"):
        a.run(["p"], np.zeros((1, 100), np.float32))
