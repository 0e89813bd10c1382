"""The runtime's start-up heap (models, tokenizers, imported libraries) is frozen out of Python's
collector, so a full collection during calls walks only what the calls allocated (before: a
gen-2 pass over ~600k start-up objects stopped the event loop 0.3-0.5 s on two cores)."""
import gc
import time

from bot.runtime import Runtime
from bot.settings import Settings


async def test_a_full_collection_after_start_walks_only_what_came_after(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    gc.unfreeze()  # as a fresh process: nothing frozen by earlier runtimes of this test run
    rt = await Runtime.start(Settings.for_tests(state_enabled=False))
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 50_000  # the libraries and models of a runtime
        assert len(gc.get_objects()) < frozen / 5  # what a collection still walks
        t0 = time.perf_counter()
        gc.collect()
        assert time.perf_counter() - t0 < 0.2
    finally:
        await rt.close()
