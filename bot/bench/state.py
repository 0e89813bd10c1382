"""`duplexbot bench redis`: event-log write throughput and Redis memory per live call.

For each number of concurrent calls, every call emits `events_per_call` realistic engine events
(a mix of speech, transcript, decision and bot-speech events) as fast as the engine can hand them
over; the store writes them through its one ordered writer. Reported: events written per second
in total and per call, the engine-side cost of `emit()`, and Redis memory per live call (the
server's used_memory growth divided by the calls, with a per-key breakdown for one call).
"""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from ..engine.events import (
    BargeIn,
    BotSpeechStart,
    BotSpeechStop,
    BotTruncated,
    CallerSpeechEnd,
    CallerSpeechStart,
    EndOfTurn,
    Event,
    Hold,
    TranscriptFinal,
    TranscriptPartial,
)
from ..engine.port import CallInfo


def call_script(call_id: str, n: int) -> list[Event]:
    """`n` events of a plausible call: caller turns with partials, end of turn, bot turns, some
    interrupted."""
    out: list[Event] = []
    t = 0.0
    turn = 0
    while len(out) < n:
        t += 0.7
        out.append(CallerSpeechStart(call_id=call_id, t=t, confidence=0.93))
        for w in ("I would", "I would like to", "I would like to change my"):
            t += 0.3
            out.append(TranscriptPartial(call_id=call_id, t=t, text=w))
        out.append(CallerSpeechEnd(call_id=call_id, t=t, speech_started=t - 1.0))
        out.append(Hold(call_id=call_id, t=t + 0.2, confidence=0.61, policy="duplex"))
        out.append(TranscriptFinal(call_id=call_id, t=t + 0.3, text="I would like to change my delivery address"))
        out.append(EndOfTurn(call_id=call_id, t=t + 0.4, confidence=0.88, silence=0.42, policy="duplex"))
        turn += 1
        out.append(BotSpeechStart(call_id=call_id, t=t + 0.6, text="Sure. What is the new address, including "
                                  "the postcode?", turn=turn))
        if turn % 3 == 0:
            out.append(BargeIn(call_id=call_id, t=t + 1.5, confidence=0.91, reason="words", policy="duplex",
                               onset=t + 1.3))
            out.append(BotTruncated(call_id=call_id, t=t + 1.5, heard="Sure. What is the new",
                                    unheard="address, including the postcode?", turn=turn))
            out.append(BotSpeechStop(call_id=call_id, t=t + 1.5, reason="barge_in", turn=turn))
        else:
            out.append(BotSpeechStop(call_id=call_id, t=t + 3.0, reason="done", turn=turn))
        t += 3.0
    return out[:n]


@dataclass(frozen=True)
class BenchRow:
    calls: int
    events_per_call: int
    events: int
    seconds: float
    events_per_s: float
    events_per_s_per_call: float
    emit_us: float  # engine-side cost of one emit() (event loop time)
    memory_per_call_bytes: int
    bytes_per_event: float
    duplicates: int
    dropped: int


async def _used_memory(redis: Any) -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])


async def run_case(url: str, calls: int, events_per_call: int, batch_max: int = 256) -> tuple[BenchRow, dict[str, int]]:
    from ..state.settings import StateSettings
    from ..state.store import CallStore

    prefix = f"bench{uuid.uuid4().hex[:6]}"
    settings = StateSettings(redis_url=url, prefix=prefix, worker_id="bench", batch_max=batch_max,
                             buffer_max=max(20000, calls * events_per_call + 10), heartbeat_interval=5.0,
                             heartbeat_ttl=30.0, reaper_interval=30.0)
    store = await CallStore.open(settings)
    try:
        infos = [CallInfo(call_id=f"call{i:05d}", transport="bench", caller="+15550001", callee="+15550100",
                          tenant="bench") for i in range(calls)]
        scripts = [call_script(i.call_id, events_per_call) for i in infos]
        await store.flush(10)
        mem0 = await _used_memory(store.redis)
        for i in infos:
            await store.call_started(i)
        assert await store.flush(30)
        t0 = time.perf_counter()
        emit_s = 0.0
        # round-robin across calls, in chunks, the way live calls interleave
        for k in range(0, events_per_call, 50):
            e0 = time.perf_counter()
            for sc in scripts:
                for ev in sc[k:k + 50]:
                    store.emit(ev)
            emit_s += time.perf_counter() - e0
            await asyncio.sleep(0)
        ok = await store.flush(600)
        elapsed = time.perf_counter() - t0
        if not ok:
            raise RuntimeError("the writer did not drain within 600 s")
        mem1 = await _used_memory(store.redis)
        c0 = infos[0].call_id
        keys = store.keys
        breakdown: dict[str, int] = {}
        for name, key in (("call_record", keys.call(c0)), ("call_events", keys.call_events(c0)),
                          ("transcript", keys.transcript(c0))):
            breakdown[name] = int(await store.redis.memory_usage(key, samples=0) or 0)
        glob = int(await store.redis.memory_usage(keys.events, samples=0) or 0)
        breakdown["global_stream_share"] = glob // calls
        n = calls * events_per_call
        st = store.stats()
        row = BenchRow(calls=calls, events_per_call=events_per_call, events=n, seconds=round(elapsed, 3),
                       events_per_s=round(n / elapsed, 1), events_per_s_per_call=round(n / elapsed / calls, 1),
                       emit_us=round(emit_s / n * 1e6, 2), memory_per_call_bytes=(mem1 - mem0) // calls,
                       bytes_per_event=round((mem1 - mem0) / n, 1), duplicates=st["duplicates"],
                       dropped=st["dropped"])
        # clean up the bench's keys
        async for key in store.redis.scan_iter(match=f"{prefix}:*", count=1000):
            await store.redis.unlink(key)
        return row, breakdown
    finally:
        await store.close()


async def run_bench(calls: list[int], events_per_call: int, url: str | None = None) -> dict[str, Any]:
    from ..state.embedded import EmbeddedValkey

    server = None
    if url is None:
        server = EmbeddedValkey()
        await server.start()
        url = server.url
    try:
        rows, breakdowns = [], {}
        for n in calls:
            row, br = await run_case(url, n, events_per_call)
            rows.append(row)
            breakdowns[str(n)] = br
        return {"server": "embedded valkey" if server else url.split("@")[-1], "rows": [asdict(r) for r in rows],
                "per_call_key_bytes": breakdowns}
    finally:
        if server is not None:
            await server.stop()


def format_table(result: dict[str, Any]) -> str:
    cols = [("calls", "calls"), ("events", "events"), ("seconds", "s"), ("events_per_s", "ev/s total"),
            ("events_per_s_per_call", "ev/s per call"), ("emit_us", "emit us"),
            ("memory_per_call_bytes", "mem/call B"), ("bytes_per_event", "B/event"), ("dropped", "dropped")]
    lines = ["  ".join(f"{h:>13}" for _, h in cols)]
    for r in result["rows"]:
        lines.append("  ".join(f"{r[k]:>13}" for k, _ in cols))
    lines.append("")
    lines.append(f"per-call key memory (bytes) at {result['rows'][0]['events_per_call']} events/call:")
    for n, br in result["per_call_key_bytes"].items():
        lines.append(f"  {n:>5} calls: " + ", ".join(f"{k}={v}" for k, v in br.items()))
    return "\n".join(lines)
