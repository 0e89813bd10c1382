"""One inference scheduler per process: each tick, one batched ONNX call per model for every live
call that has a chunk waiting.

Sessions `await scheduler.infer(model, stream_id, x)` (or `submit` several models' requests for
one chunk at once and await them together); requests are gathered for at most `max_wait` (or until
every registered stream of that model has asked), then run in that model's own worker thread so
the event loop only moves bytes and events, and two models (VAD, turn-taking) run on two cores at
once. A slow model can delay a decision, never a media packet. A stream has at most one request
per batch (recurrent state is ordered).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class StreamingBatchModel(Protocol):
    name: str

    def run(self, stream_ids: list[str], inputs: np.ndarray) -> np.ndarray: ...

    def drop(self, stream_id: str) -> None: ...


@dataclass(frozen=True)
class SchedulerSettings:
    max_wait: float = 0.004  # seconds to gather a batch once the first request arrived
    max_batch: int = 512


@dataclass
class _Request:
    stream_id: str
    x: np.ndarray
    future: asyncio.Future[np.ndarray]


@dataclass
class ModelStats:
    batches: int = 0
    items: int = 0
    seconds: float = 0.0
    max_batch: int = 0
    errors: int = 0
    providers: list[str] = field(default_factory=list)


class InferenceScheduler:
    def __init__(self, models: list[StreamingBatchModel], settings: SchedulerSettings = SchedulerSettings()):
        self.settings = settings
        self.models = {m.name: m for m in models}
        self.stats = {m.name: ModelStats(providers=list(getattr(m, "providers", []))) for m in models}
        self._pending: dict[str, list[_Request]] = {name: [] for name in self.models}
        self._streams: dict[str, set[str]] = {name: set() for name in self.models}
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task] = []
        # one thread per model: onnxruntime parallelises inside a call, serialising a model's calls
        # keeps its states ordered, and different models (independent states) run side by side
        self._pools = {name: concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"infer-{name}")
                       for name in self.models}

    async def start(self) -> None:
        for name in self.models:
            self._wake[name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._loop(name), name=f"scheduler-{name}"))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for reqs in self._pending.values():
            for r in reqs:
                if not r.future.done():
                    r.future.cancel()
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    def register(self, stream_id: str) -> None:
        for name in self.models:
            self._streams[name].add(stream_id)

    def unregister(self, stream_id: str) -> None:
        for name, model in self.models.items():
            self._streams[name].discard(stream_id)
            # dropping state happens on the worker thread, after any batch that holds the stream
            try:
                self._pools[name].submit(model.drop, stream_id)
            except RuntimeError:  # the scheduler is closed: nothing left to drop
                pass

    async def infer(self, model: str, stream_id: str, x: np.ndarray) -> np.ndarray:
        return await self.submit(model, stream_id, x)

    def submit(self, model: str, stream_id: str, x: np.ndarray) -> asyncio.Future[np.ndarray]:
        """Queue one request for the next batch of `model`; the future holds its output row."""
        if model not in self.models:
            raise KeyError(f"no model {model!r} in the scheduler (have {sorted(self.models)})")
        fut: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending[model].append(_Request(stream_id, x, fut))
        self._wake[model].set()
        return fut

    async def _loop(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake[name]
        while True:
            await wake.wait()
            deadline = loop.time() + self.settings.max_wait
            while len(self._pending[name]) < len(self._streams[name]) and loop.time() < deadline:
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), deadline - loop.time())
                except asyncio.TimeoutError:
                    break
            wake.clear()
            batch: list[_Request] = []
            rest: list[_Request] = []
            seen: set[str] = set()
            for r in self._pending[name]:
                if r.future.done():
                    continue
                if r.stream_id in seen or len(batch) >= self.settings.max_batch:
                    rest.append(r)
                else:
                    seen.add(r.stream_id)
                    batch.append(r)
            self._pending[name] = rest
            if rest:
                wake.set()
            if batch:
                await self._run(name, batch)

    async def _run(self, name: str, batch: list[_Request]) -> None:
        model, stats = self.models[name], self.stats[name]
        ids = [r.stream_id for r in batch]
        x = np.stack([r.x for r in batch])
        t0 = time.perf_counter()
        try:
            out = await asyncio.get_running_loop().run_in_executor(self._pools[name], model.run, ids, x)
        except Exception as e:  # a broken batch fails its requests, never the scheduler
            stats.errors += 1
            for r in batch:
                if not r.future.done():
                    r.future.set_exception(RuntimeError(f"{name} inference failed: {e}"))
            return
        stats.batches += 1
        stats.items += len(batch)
        stats.seconds += time.perf_counter() - t0
        stats.max_batch = max(stats.max_batch, len(batch))
        for i, r in enumerate(batch):
            if not r.future.done():
                r.future.set_result(out[i])
