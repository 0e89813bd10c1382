"""`duplexbot bench phone DATASET`: every labelled caller turn of a phone set (bot.eval.phone_data)
played as a Twilio Media Streams call into a real `duplexbot serve` process on 127.0.0.1.

The server and Twilio's side of each call are the ones `duplexbot bench twilio` uses
(`ServerProcess`, `TwilioPeer`). A pool of `--parallel` callers works through the samples, one call
per sample (the first calls ring in over 8 s, about one call, so turns end at scattered times:
started together, 20 callers finished their questions within 2 s of each other and the answers
queued behind one another, p50 1.1-1.3 s against 0.42 s for 2 callers). Each call: dial, wait
for the greeting to finish (audible bot audio, then 0.5 s without), stream the sample in real
time as 20 ms mu-law media (then silence, as a phone line does) and stop once the answer has
played for a second, or 3 s after the labelled end if none comes; a call refused as busy
(admission control) is dialled again. What the caller hears
is the peer's playout model: a bot frame is heard when it would play (after the frames queued
before it), not when it arrives.

Per sample, with times relative to the sample's first media frame:
- first audible: start of the first heard bot frame at or above -40 dBFS (the greeting is over);
- response latency: first audible - labelled end;
- take-over: first audible before the labelled end; *in a hold* when inside a labelled pause;
- unanswered: nothing audible within 3 s of the labelled end.
Server CPU (utime + stime of its /proc/PID/stat) is read around each kind's run and divided by the
32 ms chunks of caller audio the server was sent (greeting wait and trailing silence included);
cores = CPU seconds / wall seconds. Samples run one kind at a time, so each kind's CPU is its own.
The server's pacer underruns (Prometheus) and the callers' own event-loop lag (p99) are reported
beside it: the playout model stamps arrivals with the callers' clock, so a starved caller process
inflates the latencies it measures.
"""
from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import aiohttp
import numpy as np

from models.audio import bandpass

from ..audio.resample import resample
from ..bench.twilio import LoopLag, ServerProcess
from ..bench.twilio_peer import FRAME_S, TwilioPeer
from ..engine.event_log import read_event_log
from ..policy.completeness import trailing_digits
from .phone_data import PhoneSample, load_set
from .phone_trace import join_traces, takeover_reasons

CHUNK_S = 0.032  # the duplex model's step: CPU is reported per call per chunk of caller audio
TICK = os.sysconf("SC_CLK_TCK")
UNDERRUNS = "duplexbot_twilio_underruns_total"  # the server's pacer fell behind real time mid-speech
BACKLOG = "duplexbot_engine_backlog_seconds"  # caller audio waiting for the engine, worst call (admission's view)
BACKLOG_EVERY = 0.5  # s between reads of it during a pool
# where each answer's time went (bot/engine/turn_timing.py) and what ASR took (bot/services/asr.py)
STAGES = {"decide": 'duplexbot_turn_stage_seconds{suffix}{{stage="decide"}}',
          "answer": 'duplexbot_turn_stage_seconds{suffix}{{stage="answer"}}',
          "words": 'duplexbot_turn_stage_seconds{suffix}{{stage="words"}}',
          "asr_wait": 'duplexbot_asr_seconds{suffix}{{phase="wait"}}',
          "asr_run": 'duplexbot_asr_seconds{suffix}{{phase="run"}}'}


@dataclass(frozen=True)
class PhoneBenchSettings:
    parallel: int = 4
    policy: str = "auto"
    out: str = "out/bench-phone"
    limit: int | None = None
    audible_dbfs: float = -40.0  # a heard bot frame at or above this counts as audible
    greeting_quiet: float = 0.5  # the greeting is over after this long without audible bot audio
    window: float = 3.0  # no audible answer within this of the labelled end: unanswered
    listen: float = 1.0  # seconds of the answer heard before hanging up
    # the pool's first calls ring in spread over this (about one call: greeting, question, answer), so
    # the callers' turns end at scattered times as on a live line, not all within one ASR burst
    ramp: float = 8.0
    redial_after: float = 1.0  # a call the server refuses (busy) is dialled again after this ...
    redial_for: float = 30.0  # ... for up to this long; then the sample counts as an error
    port: int = 0
    # one pool over every kind (interleaved), so `parallel` calls really are up at once; by kind (the
    # default) each kind has its own pool, and a kind with fewer samples never reaches `parallel`
    mixed: bool = False
    repeat: int = 1  # each sample is called this many times (more calls than the set has samples)
    # a sample that reads out a number is called with its length declared (?expect_digits=N, the
    # voice URL of a step that collects a number); off, the bot knows nothing of what it will hear
    expect_digits: bool = False
    # the caller's audio band-passed to 300-3400 Hz before mu-law, as an analogue or narrowband PSTN
    # leg delivers it (models.audio.bandpass); off, the full 0-4 kHz of the 8 kHz stream
    pstn_band: bool = False
    # the server's end_of_turn mode (DUPLEXBOT_END_OF_TURN: fast | balanced | accurate)
    end_of_turn: str = "balanced"


# ------------------------------------------------------------------ metrics (pure)

@dataclass(frozen=True)
class Outcome:
    first_audible: float | None  # seconds from the sample's start
    latency: float | None  # first_audible - end (negative for a take-over)
    takeover: bool  # the bot's first audible audio started before the labelled end
    takeover_in_hold: bool  # ... inside a labelled hold
    unanswered: bool


def frame_dbfs(pcm: np.ndarray) -> float:
    """RMS level of int16 samples in dBFS (full scale 32768)."""
    x = np.asarray(pcm, np.float64) / 32768.0
    return float(10 * np.log10(np.mean(x * x) + 1e-12)) if x.size else -120.0


def first_audible(timeline: Sequence[tuple[float, float]], after: float, threshold: float) -> float | None:
    """Earliest start >= `after` of a (start, dBFS) heard frame at or above `threshold`."""
    starts = [t for t, db in timeline if t >= after and db >= threshold]
    return min(starts) if starts else None


def score(timeline: Sequence[tuple[float, float]], end: float, holds: Sequence[tuple[float, float]],
          threshold: float = -40.0, window: float = 3.0) -> Outcome:
    """One sample's outcome from what the caller heard: (start, dBFS) per bot frame, seconds from
    the sample's start (frames from before the sample, i.e. the greeting, are ignored)."""
    t = first_audible(timeline, 0.0, threshold)
    if t is None or t > end + window:
        return Outcome(t, None, False, False, True)
    return Outcome(t, t - end, t < end, any(h0 <= t < h1 for h0, h1 in holds), False)


EARLY_S = 0.3  # a take-over this close to the labelled end is an early answer, not talking over the caller


def talked_over(bursts: Sequence[Sequence[float]], first: float | None, end: float,
                holds: Sequence[Sequence[float]]) -> float | None:
    """For a take-over the caller went on from (first audible bot audio more than EARLY_S before
    the labelled end), how long the caller heard bot and caller at once: from the caller's speech
    again (the end of the hold the bot spoke into, or at once if it spoke into speech) to the end
    of that burst of bot audio or of the caller's speech, whichever came first. None otherwise."""
    if first is None or first >= end:
        return None
    resumed = next((h1 for h0, h1 in holds if h0 <= first < h1), first)
    if end - resumed < EARLY_S:
        return None
    burst_end = next((b1 for b0, b1 in bursts if b0 <= first + 1e-6 < b1), first)
    return max(0.0, min(burst_end, end) - resumed)


def _pct(xs: list[float], p: float) -> float | None:
    return round(float(np.percentile(xs, p)) * 1000, 1) if xs else None


def summarise(rows: list[dict], cpu_s: float, wall_s: float, chunks: float) -> dict:
    """Aggregate of sample rows (each with kind, error, latency, takeover, takeover_in_hold, unanswered, holds).

    Latency percentiles are over answered samples without a take-over; `within_500ms` is a share of
    every scored sample; `takeover_in_hold_rate` is over samples that have holds."""
    scored = [r for r in rows if not r["error"]]
    lat = [r["latency"] for r in scored if r["latency"] is not None and not r["takeover"]]
    with_holds = [r for r in scored if r["holds"]]
    over = [x for x in (talked_over(r.get("audible", ()), r.get("first_audible"), r.get("end", 0.0), r["holds"])
                        for r in scored if r["takeover"]) if x is not None]
    n = len(scored)
    return {
        "samples": len(rows), "errors": len(rows) - n, "redials": sum(r.get("redials", 0) for r in rows),
        "latency_ms": {"p50": _pct(lat, 50), "p90": _pct(lat, 90), "max": _pct(lat, 100), "n": len(lat)},
        "within_500ms": round(sum(0 <= x <= 0.5 for x in lat) / n, 3) if n else None,
        "takeovers": sum(r["takeover"] for r in scored),
        "takeover_rate": round(sum(r["takeover"] for r in scored) / n, 3) if n else None,
        "holds": len(with_holds), "takeovers_in_holds": sum(r["takeover_in_hold"] for r in with_holds),
        "takeover_in_hold_rate": (round(sum(r["takeover_in_hold"] for r in with_holds) / len(with_holds), 3)
                                  if with_holds else None),
        # take-overs the caller went on from: how long both talked at once (the bot's stop, as heard)
        "talked_over_ms": {"p50": _pct(over, 50), "max": _pct(over, 100), "n": len(over)},
        "unanswered": sum(r["unanswered"] for r in scored),
        "unanswered_rate": round(sum(r["unanswered"] for r in scored) / n, 3) if n else None,
        "server_cpu_s": round(cpu_s, 3), "wall_s": round(wall_s, 2), "caller_chunks": int(chunks),
        "cpu_ms_per_call_chunk": round(cpu_s * 1000 / chunks, 4) if chunks else None,
        "cpu_cores": round(cpu_s / wall_s, 3) if wall_s else None,
    }


# ------------------------------------------------------------------ one call

def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of stat(5)


@dataclass(frozen=True)
class CallRecord:
    outcome: Outcome | None
    error: str
    caller_frames: int  # 20 ms media frames the caller sent in the whole call
    bot_frames: int
    late_frames: int
    bursts: tuple[tuple[float, float], ...]  # audible bot audio heard, (start, end) from the sample's start
    refused: bool = False  # the server answered <Reject reason="busy"> (admission control): redialling can help
    redials: int = 0  # refusals before this call went through (or was given up)
    call_id: str = ""  # the CallSid, as the server's events name the call
    stream_offset: float | None = None  # the server's stream time of the sample's first frame
    sent_mono: float | None = None  # time.monotonic() when that frame went out (the server's events share the clock)


def _bursts(timeline: list[tuple[float, float]], threshold: float, gap: float = 0.1) -> tuple[tuple[float, float], ...]:
    out: list[list[float]] = []
    for t, db in sorted(timeline):
        if db < threshold:
            continue
        if out and t - out[-1][1] <= gap:
            out[-1][1] = t + FRAME_S
        else:
            out.append([t, t + FRAME_S])
    return tuple((round(a, 3), round(b, 3)) for a, b in out)


class HeardLevels:
    """The level of every bot frame a peer's caller has heard, each measured once as it comes in
    (the peer replaces its `heard` list on a `clear`: then it is measured again from the start)."""

    def __init__(self, peer: TwilioPeer, threshold: float):
        self.peer, self.threshold = peer, threshold
        self.frames: list[tuple[float, float]] = []  # (start, dBFS), in playout order
        self.audible: list[float] = []  # starts of the audible frames (ascending: playout order)
        self._seen: list | None = None

    def update(self) -> None:
        heard = self.peer.heard
        if heard is not self._seen:
            self._seen, self.frames, self.audible = heard, [], []
        for h in heard[len(self.frames):]:
            db = frame_dbfs(h.pcm)
            self.frames.append((h.start, db))
            if db >= self.threshold:
                self.audible.append(h.start)

    def last_audible_end(self) -> float | None:
        self.update()
        return self.audible[-1] + FRAME_S if self.audible else None

    def first_audible(self, after: float) -> float | None:
        self.update()
        i = bisect.bisect_left(self.audible, after)
        return self.audible[i] if i < len(self.audible) else None


async def call_sample(http: aiohttp.ClientSession, srv: ServerProcess, sample: PhoneSample, pcm8k: np.ndarray,
                      bs: PhoneBenchSettings) -> CallRecord:
    p = TwilioPeer(srv.base, srv.auth, account_sid=srv.account)
    heard = HeardLevels(p, bs.audible_dbfs)
    outcome, error, t0, offset = None, "", None, None

    def quiet() -> bool:
        last = heard.last_audible_end()
        return last is not None and p.clock() - last >= bs.greeting_quiet

    try:
        n = trailing_digits(sample.text.replace("|", " ")) if bs.expect_digits else 0
        r = await p.webhook(http, query=f"expect_digits={n}" if n >= 3 else "")
        if not p.stream_url:
            if "<Reject" in p.twiml:
                return CallRecord(None, f"refused: {p.twiml[p.twiml.find('<Reject'):][:60]}", 0, 0, 0, (), True,
                                  call_id=p.call_sid)
            raise RuntimeError(f"voice webhook answered {r.status}: {p.twiml}")
        await p.open(http)
        if not await p.wait_for(lambda: heard.last_audible_end() is not None, 20):
            raise RuntimeError("no greeting")
        if not await p.wait_for(quiet, 40):
            raise RuntimeError("greeting never ended")
        u = p.say(pcm8k)
        await p.wait_for(lambda: u.first_sent is not None, 5)
        sent = t0 = u.first_sent
        if sent is None or u.first_frame is None:
            raise RuntimeError("caller audio never went out")
        offset = u.first_frame * FRAME_S
        end, deadline = sent + sample.end, sent + sample.end + bs.window

        def finished() -> bool:
            now, first = p.clock(), heard.first_audible(sent)
            return u.done.is_set() and (now > deadline or (first is not None and now > max(first, end) + bs.listen))
        if not await p.wait_for(finished, sample.end + bs.window + 30):
            raise RuntimeError("call did not finish")
        heard.update()
        outcome = score([(t - sent, db) for t, db in heard.frames], sample.end, sample.holds, bs.audible_dbfs,
                        bs.window)
    except Exception as e:  # noqa: BLE001 - a failed call is a result, not a crash
        error = f"{type(e).__name__}: {e}"
    finally:
        await p.hang_up()
    heard.update()
    rel = [(t - t0, db) for t, db in heard.frames if t >= t0] if t0 is not None else []
    return CallRecord(outcome, error, p.frames_sent, p.media_in, len(p.late), _bursts(rel, bs.audible_dbfs),
                      call_id=p.call_sid, stream_offset=offset, sent_mono=t0)


@dataclass
class PoolStats:
    up: int = 0  # calls up now (ringing, greeting, talking)
    peak: int = 0  # the most calls up at once


async def run_pool(http: aiohttp.ClientSession, srv: ServerProcess, items: list[tuple[PhoneSample, np.ndarray]],
                   bs: PhoneBenchSettings, log: Callable[[str], None],
                   stats: PoolStats | None = None) -> list[tuple[PhoneSample, CallRecord]]:
    """`bs.parallel` callers take the samples in order, one call each, until none is left; `stats`
    counts how many calls were really up at once."""
    queue: asyncio.Queue[tuple[PhoneSample, np.ndarray]] = asyncio.Queue()
    for it in items:
        queue.put_nowait(it)
    done: list[tuple[PhoneSample, CallRecord]] = []
    st = stats if stats is not None else PoolStats()

    async def caller(k: int) -> None:
        await asyncio.sleep(k * bs.ramp / max(bs.parallel, 1))
        while not queue.empty():
            sample, pcm = queue.get_nowait()
            refusals, give_up = 0, time.monotonic() + bs.redial_for
            while True:
                st.up += 1
                st.peak = max(st.peak, st.up)
                try:
                    rec = await call_sample(http, srv, sample, pcm, bs)
                finally:
                    st.up -= 1
                if not rec.refused or time.monotonic() > give_up:
                    break
                refusals += 1
                await asyncio.sleep(bs.redial_after)  # a refused caller rings again a little later
            done.append((sample, replace(rec, redials=refusals)))
            o = rec.outcome
            log(f"  {sample.id:<10} {sample.speaker:<30} " + (f"error {rec.error}" if o is None else
                "unanswered" if o.latency is None else f"{o.latency * 1000:+7.0f} ms"
                + (" take-over in hold" if o.takeover_in_hold else " take-over" if o.takeover else "")))

    await asyncio.gather(*(caller(k) for k in range(min(bs.parallel, len(items)))))
    return done


def caller_leg(x: np.ndarray, sr: int, band: bool = False) -> np.ndarray:
    """A sample's audio as the caller's side sends it: int16 at 8 kHz (the peer mu-law encodes it),
    band-passed to 300-3400 Hz first with `band` (PhoneBenchSettings.pstn_band)."""
    pcm = resample((np.clip(x, -1, 1) * 32767).astype(np.int16), sr, 8000)
    if band:
        pcm = np.clip(bandpass(pcm.astype(np.float32), 8000), -32768, 32767).astype(np.int16)
    return pcm


def _row(s: PhoneSample, rec: CallRecord) -> dict[str, Any]:
    o = rec.outcome
    r: dict[str, Any] = {"id": s.id, "kind": s.kind, "speaker": s.speaker, "voice": s.voice, "text": s.text,
                         "end": s.end, "holds": [list(h) for h in s.holds], "error": rec.error}
    r.update(asdict(o) if o else {"first_audible": None, "latency": None, "takeover": False,
                                  "takeover_in_hold": False, "unanswered": False})
    for k in ("first_audible", "latency"):
        r[k] = round(r[k], 3) if r[k] is not None else None
    r.update(caller_frames=rec.caller_frames, bot_frames=rec.bot_frames, late_frames=rec.late_frames,
             redials=rec.redials, audible=[list(b) for b in rec.bursts], call_id=rec.call_id,
             stream_offset=rec.stream_offset, sent_mono=rec.sent_mono)
    return r


POOL_WIDE = ("client_loop_lag_p99_ms", "client_cpu_cores", "stage_mean_ms", "peak_calls", "engine_backlog_s")


def split_mixed(pool: dict[str, Any], rows: list[dict[str, Any]], kinds: list[str]) -> dict[str, dict[str, Any]]:
    """By kind, from one pool over every kind (`--mixed`): each kind's own calls, and the pool's
    server-side figures as they were (the pool's); the server's underruns are not the kind's (a
    count of the whole run: `None` by kind, and the run's total once, overall)."""
    out = {k: summarise([r for r in rows if r["kind"] == k], 0.0, 0.0, 0.0) for k in kinds}
    for k in out:
        out[k].update({key: pool[key] for key in POOL_WIDE}, server_underruns=None)
    return out


async def run_bench(dataset: str | Path, bs: PhoneBenchSettings, log: Callable[[str], None] = print) -> dict:
    phone_set = load_set(dataset, bs.limit)
    out = Path(bs.out)
    out.mkdir(parents=True, exist_ok=True)
    kinds = sorted({s.kind for s in phone_set.samples}, key=lambda k: (k != "short", k))
    audio = {s.id: caller_leg(*phone_set.audio(s), band=bs.pstn_band) for s in phone_set.samples}
    events_path = out / "events.jsonl"
    events_path.unlink(missing_ok=True)
    srv = ServerProcess(bs.port or _free_port(), bs.policy, out / "server.log", event_log=events_path,
                        env_extra={"DUPLEXBOT_END_OF_TURN": bs.end_of_turn})
    report: dict = {"bench": "phone", "dataset": str(dataset), "policy": bs.policy, "parallel": bs.parallel,
                    "transport": "twilio media streams over ws://127.0.0.1", "settings": asdict(bs),
                    "licences": phone_set.licences, "code": _code_state(),
                    "machine": {"cpu_count": os.cpu_count(), "machine": platform.machine(),
                                "python": platform.python_version(), "load_avg_1m": os.getloadavg()[0]}}
    rows: list[dict] = []
    by_kind: dict[str, dict] = {}
    totals = [0.0, 0.0, 0.0]  # cpu, wall, chunks
    lags: list[float] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await srv.ready(http)
            log(f"server ready on {srv.base} (policy {bs.policy}); {len(phone_set.samples)} samples, "
                f"{bs.parallel} at once")
            for kind, items in _pools(phone_set.samples, kinds, audio, bs):
                log(f"{kind}: {len(items)} calls")
                lag = LoopLag()
                lag.start()
                under0 = await srv.metric(http, UNDERRUNS)
                stages0 = await _stage_totals(http, srv)
                cpu0, wall0, own0 = process_cpu_seconds(srv.proc.pid), time.monotonic(), time.process_time()
                pool = PoolStats()
                backlog: list[float] = []
                sampler = asyncio.create_task(_sample_backlog(http, srv, backlog))
                try:
                    done = await run_pool(http, srv, items, bs, log, pool)
                finally:
                    client_lag = await lag.stop()
                    sampler.cancel()
                    await asyncio.gather(sampler, return_exceptions=True)
                cpu, wall = process_cpu_seconds(srv.proc.pid) - cpu0, time.monotonic() - wall0
                lags += lag.samples
                chunks = sum(r.caller_frames for _, r in done) * FRAME_S / CHUNK_S
                kind_rows = [_row(s, r) for s, r in sorted(done, key=lambda d: d[0].id)]
                rows += kind_rows
                by_kind[kind] = summarise(kind_rows, cpu, wall, chunks)
                by_kind[kind]["peak_calls"] = pool.peak
                by_kind[kind]["engine_backlog_s"] = _backlog_summary(backlog)
                by_kind[kind]["client_loop_lag_p99_ms"] = client_lag
                by_kind[kind]["client_cpu_cores"] = round((time.process_time() - own0) / wall, 3)
                by_kind[kind]["server_underruns"] = int(await srv.metric(http, UNDERRUNS) - under0)
                stages = await _stage_totals(http, srv)
                by_kind[kind]["stage_mean_ms"] = _stage_delta(stages0, stages)
                totals = [totals[0] + cpu, totals[1] + wall, totals[2] + chunks]
    finally:
        srv.stop()
    underruns = sum(k["server_underruns"] for k in by_kind.values())  # one count per pool, before any split
    if bs.mixed:
        by_kind = split_mixed(by_kind.pop("mixed"), rows, kinds)
    report["by_kind"] = by_kind
    report["overall"] = summarise(rows, *totals)
    report["overall"]["peak_calls"] = max(k["peak_calls"] for k in by_kind.values()) if by_kind else 0
    report["overall"]["engine_backlog_s"] = max((k["engine_backlog_s"] for k in by_kind.values()),
                                                key=lambda b: -1.0 if b["max"] is None else b["max"],
                                                default=_backlog_summary([]))
    report["overall"]["stage_mean_ms"] = _stage_means(by_kind)
    report["overall"]["client_loop_lag_p99_ms"] = _pct(lags, 99) or 0.0
    report["overall"]["server_underruns"] = underruns
    report["traced"] = join_traces(rows, read_event_log(events_path))  # the server's own reasons, per call
    report["samples"] = rows
    report["machine"]["load_avg_1m_end"] = os.getloadavg()[0]
    (out / "results.json").write_text(json.dumps(report, indent=2))
    return report


async def _sample_backlog(http: aiohttp.ClientSession, srv: ServerProcess, into: list[float]) -> None:
    """Read the server's engine backlog every BACKLOG_EVERY s until cancelled (a failed read is skipped)."""
    while True:
        try:
            into.append(await srv.metric(http, BACKLOG))
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(BACKLOG_EVERY)


def _backlog_summary(xs: list[float]) -> dict[str, float | None]:
    if not xs:
        return {"p50": None, "p90": None, "max": None}
    return {"p50": round(float(np.percentile(xs, 50)), 3), "p90": round(float(np.percentile(xs, 90)), 3),
            "max": round(max(xs), 3)}


def _pools(samples: Sequence[PhoneSample], kinds: list[str], audio: dict[str, np.ndarray],
           bs: PhoneBenchSettings) -> list[tuple[str, list[tuple[PhoneSample, np.ndarray]]]]:
    """The calls to make: one pool per kind, or with `bs.mixed` one pool of every kind interleaved
    (round robin), each sample `bs.repeat` times."""
    by = {k: [(s, audio[s.id]) for s in samples if s.kind == k] * max(1, bs.repeat) for k in kinds}
    if not bs.mixed:
        return list(by.items())
    mixed = [it for group in itertools.zip_longest(*by.values()) for it in group if it is not None]
    return [("mixed", mixed)]


def _stage_delta(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> dict:
    """Mean ms of each stage between two readings of `_stage_totals` (None: no such stage meanwhile)."""
    out: dict[str, float | None] = {}
    for k in STAGES:
        n = after[k][1] - before[k][1]
        out[k] = round((after[k][0] - before[k][0]) / n * 1000, 1) if n else None
    return out


def _stage_means(by_kind: dict[str, dict]) -> dict[str, float | None]:
    """Answer-stage means over the kinds, weighted by their answered calls."""
    out: dict[str, float | None] = {}
    for k in STAGES:
        parts = [(v["stage_mean_ms"].get(k), v["latency_ms"]["n"]) for v in by_kind.values() if "stage_mean_ms" in v]
        parts = [(m, n) for m, n in parts if m is not None and n]
        out[k] = round(sum(m * n for m, n in parts) / sum(n for _, n in parts), 1) if parts else None
    return out


async def _stage_totals(http: aiohttp.ClientSession, srv: ServerProcess) -> dict[str, tuple[float, float]]:
    """(sum of seconds, count) of each answer stage so far, from the server's /metrics."""
    names = {k: (name.format(suffix="_sum"), name.format(suffix="_count")) for k, name in STAGES.items()}
    got = await srv.metrics(http, [n for pair in names.values() for n in pair])
    return {k: (got[s], got[c]) for k, (s, c) in names.items()}


def _code_state() -> dict:
    """The commit the server ran and the files changed on top of it (other work in the same tree
    moves the results: the policy files especially)."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "changed": changed}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _or_dash(v: object) -> str:
    return "-" if v is None else str(v)


def format_table(report: dict) -> str:
    head = (f"{'kind':<8}{'n':>4}{'p50 ms':>9}{'p90 ms':>9}{'<=500ms':>9}{'hold t-o':>10}{'any t-o':>9}"
            f"{'unans.':>8}{'err':>5}{'CPU ms/call/chunk':>19}{'cores':>7}{'lag p99':>9}{'undrn':>7}")
    lines = [f"Phone-path bench: {report['dataset']} (policy {report['policy']}, {report['parallel']} calls at once, "
             f"{report['transport']})", head]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v * 100:.0f}%"

    for name, s in [*report["by_kind"].items(), ("all", report["overall"])]:
        hold = f"{s['takeovers_in_holds']}/{s['holds']}" if s["holds"] else "-"
        lines.append(f"{name:<8}{s['samples']:>4}{s['latency_ms']['p50']!s:>9}{s['latency_ms']['p90']!s:>9}"
                     f"{pct(s['within_500ms']):>9}{hold:>10}{pct(s['takeover_rate']):>9}{pct(s['unanswered_rate']):>8}"
                     f"{s['errors']:>5}{s['cpu_ms_per_call_chunk'] or '-'!s:>19}{s['cpu_cores'] or '-'!s:>7}"
                     f"{s['client_loop_lag_p99_ms']!s:>9}{_or_dash(s['server_underruns']):>7}")
    lines.append("latency: labelled end of caller speech -> first audible (>= "
                 f"{report['settings']['audible_dbfs']:.0f} dBFS) bot audio the caller hears, over answered samples "
                 "without a take-over; <=500ms and rates over all samples of the kind; hold t-o: first audible "
                 "bot audio inside a labelled pause; CPU and cores: the server process; lag p99: the callers' own "
                 "event loop (ms late), high when the callers, not the server, are short of CPU; undrn: times the "
                 "server's pacer fell behind real time mid-speech")
    peak = report["overall"].get("peak_calls")
    if peak is not None:
        pools = "one pool over every kind" if report["settings"].get("mixed") else "one pool per kind"
        lines.append(f"calls up at once at most: {peak} ({pools})")
    st = report["overall"].get("stage_mean_ms") or {}
    if any(v is not None for v in st.values()):
        lines.append("where the time went (server, mean ms): " + ", ".join(
            f"{k} {v}" for k, v in st.items() if v is not None) + " (decide: caller silence at the end-of-turn "
            "decision; answer: decision to the bot's first audio; words: pause to its transcript)")
    eb = report["overall"].get("engine_backlog_s") or {}
    if eb.get("max") is not None:
        lines.append(f"engine backlog (s of caller audio waiting, worst call, read every {BACKLOG_EVERY} s): "
                     f"p50 {eb['p50']}, p90 {eb['p90']}, max {eb['max']} (the server refuses new calls above "
                     "DUPLEXBOT_MAX_ENGINE_BACKLOG_MS, 0.5 s by default)")
    if report["overall"]["redials"]:
        lines.append(f"the server refused {report['overall']['redials']} call(s) as busy (admission control); each "
                     f"was dialled again after {report['settings']['redial_after']} s")
    ov = report["overall"].get("talked_over_ms") or {}
    if ov.get("n"):
        lines.append(f"take-overs the caller went on from ({ov['n']}; the rest came under {EARLY_S:.1f} s before the "
                     f"labelled end): bot and caller heard at once p50 {ov['p50']} ms, max {ov['max']} ms (from the "
                     "caller's speech again to the end of that bot audio)")
    why = takeover_reasons(report.get("samples", []))
    if why:
        lines.append("take-overs, and the server's reason (events.jsonl):")
        lines += why
    return "\n".join(lines)
