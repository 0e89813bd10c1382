"""`duplexbot bench brain`: what a language model behind the bot costs the caller, over the phone path.

The same caller questions (a generated set of short store questions, or `--dataset` any phone set
of bot.eval.phone_data) are played as Twilio Media Streams calls into a real `duplexbot serve` on
127.0.0.1, once per configuration: the offline YAML agent, then the OpenAI-compatible stub
(bot/bench/llm_stub.py, in this process) at each time to first token (0, 0.4 and 0.8 s by default,
12 words/s), set through the server's DUPLEXBOT_LLM_BASE_URL / DUPLEXBOT_LLM_MODEL. Each
configuration gets its own server process (the model is chosen at start-up); the callers are
those of `duplexbot bench phone` (`call_sample`, `run_pool`), so the numbers are measured the same
way: caller's end of speech -> first audible bot audio the caller hears, p50/p90, and the turns
with no audible answer within 3 s.

The server runs with call state on, in a Valkey this bench starts (REDIS_URL), so its engine events
can be read back from the global event stream afterwards: `speculation` events (a response started
on a provisional transcript at a pause; outcome started / used / wasted) give the speculations
started, used and wasted and the wasted rate; the stub's request log gives the extra model calls
per turn (requests / answered turns - 1: 0 when each turn asks the model once; the turns the bot
took are the server's `end_of_turn` events, or the calls without an error when there are no
events: counting only the turns heard within 3 s would inflate it as the model gets slower,
+0.78 against +0.07 at 800 ms on the first full run). Until the engine
emits speculations the counts are 0; without a Valkey they are `null`.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import aiohttp
import numpy as np

from ..audio.resample import resample
from ..eval.phone import CHUNK_S, CallRecord, PhoneBenchSettings, process_cpu_seconds, run_pool, summarise
from ..eval.phone_data import PhoneSample, PhoneSet, build_short, load_set, make_voices
from ..state.embedded import free_port
from .llm_stub import MODEL, LlmStub, StubSettings
from .twilio import ServerProcess
from .twilio_peer import FRAME_S

# Short questions a store's callers ask. None asks for a payment, a person, a goodbye or a
# cancellation (the agent would act instead of answering), and none is a training text.
STORE_QUESTIONS = [
    "What time do you open on Saturday?", "Where exactly is your shop?", "How long does shipping take?",
    "Can I return a kettle that broke?", "How much are the garden chairs?", "Are you open this Sunday?",
    "What street are you on?", "Is shipping free for big orders?", "Do you have anything on sale?",
    "When will my parcel arrive?", "What time do you close tonight?", "Can I exchange a jacket?",
    "Is the store near the station?", "Do you ship to the islands?", "How cheap are the lamps this week?",
    "Are you open late on Friday?", "Can I get my money back on a toaster?", "Where do I find you?",
    "How do I track my order?", "Is there a discount on paint?", "What are your weekend hours?",
    "How long is the return window?", "Do you deliver on Saturdays?", "How much does a blender cost?",
    "Which bus stops near the store?", "Can I return something without the box?", "Is the shop open at nine?",
    "How fast is express shipping?", "Are the tents on offer?", "What time does the store close on Saturday?",
]
EVENTS_WAIT = 10.0  # seconds to wait for the server's event writer to flush every call's call_ended


@dataclass(frozen=True)
class BrainBenchSettings:
    n: int = 30  # questions (each one call)
    parallel: int = 4
    ttfts: tuple[float, ...] = (0.0, 0.4, 0.8)  # the stub's time to first token, one configuration each
    words_per_second: float = 12.0
    offline: bool = True  # also the offline YAML agent (the reference)
    policy: str = "auto"
    out: str = "out/bench-brain.json"
    question_set: str = "out/brain-set"  # where the generated questions are kept (made once per n/voices)
    dataset: str | None = None  # or any phone set (bot.eval.phone_data) instead
    voices: tuple[str, ...] = ("espeak", "hibari")
    window: float = 3.0  # no audible answer within this of the end of speech: unanswered
    port: int = 0


@dataclass(frozen=True)
class Config:
    name: str
    model: StubSettings | None  # None: the offline YAML agent


# ------------------------------------------------------------------ questions

def question_set(folder: Path, n: int, voices: tuple[str, ...], log: Callable[[str], None]) -> PhoneSet:
    """The first `n` store questions, each in the next held-out voice (round robin), as a phone set
    in `folder`; made once, then reused while n, the voices and the texts are unchanged."""
    texts = [STORE_QUESTIONS[i % len(STORE_QUESTIONS)] for i in range(n)]
    key = hashlib.sha256(json.dumps([texts, list(voices)]).encode()).hexdigest()[:16]
    manifest = folder / "manifest.json"
    try:
        if json.loads(manifest.read_text()).get("key") == key:
            return load_set(folder)
    except (OSError, ValueError):
        pass
    from models.audio import write_wav

    pool, licences = make_voices(voices)
    if not pool:
        raise ValueError(f"no voices available for {', '.join(voices)}")
    (folder / "wav").mkdir(parents=True, exist_ok=True)
    samples = []
    for i, text in enumerate(texts):
        voice = pool[i % len(pool)]
        audio, end, _ = build_short(voice, text)
        sid = f"q-{i:03d}"
        write_wav(folder / "wav" / f"{sid}.wav", audio, 16000)
        samples.append(PhoneSample(sid, f"wav/{sid}.wav", "short", voice.name, voice.family, round(end, 3), (),
                                   text))
    log(f"made {n} questions in {len(pool)} voices -> {folder}")
    manifest.write_text(json.dumps({"samples": [s.to_dict() for s in samples], "licences": licences,
                                    "made_by": "bot.bench.brain", "key": key}, indent=2))
    return load_set(folder)


def caller_pcm(phone_set: PhoneSet, s: PhoneSample) -> np.ndarray:
    """A sample's audio as the phone line carries it: int16 at 8 kHz."""
    x, sr = phone_set.audio(s)
    return resample((np.clip(x, -1, 1) * 32767).astype(np.int16), sr, 8000)


def sample_row(s: PhoneSample, rec: CallRecord) -> dict[str, Any]:
    """One call as `summarise` reads it (and as the JSON keeps it)."""
    o = rec.outcome
    return {"id": s.id, "text": s.text, "speaker": s.speaker, "end": s.end, "holds": [list(h) for h in s.holds],
            "error": rec.error, "redials": rec.redials,
            "latency": None if o is None or o.latency is None else round(o.latency, 3),
            "takeover": bool(o and o.takeover), "takeover_in_hold": bool(o and o.takeover_in_hold),
            "unanswered": bool(o and o.unanswered)}


def code_commit() -> str:
    """The commit the server ran ("+" when files changed on top of it: other work in the tree)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return head.strip() + ("+" if dirty.strip() else "")


# ------------------------------------------------------------------ the server and its events

class BrainServer(ServerProcess):
    """`duplexbot serve` as the phone bench runs it, but with call state on (in our Valkey, so its
    events can be read back) and the model's environment (empty: the offline agent)."""

    def __init__(self, port: int, policy: str, log_path: Path, redis_url: str, model_env: dict[str, str],
                 data_dir: str) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.auth = os.urandom(16).hex()
        self.account = "AC" + os.urandom(16).hex()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUPLEXBOT_LLM_")}
        env.update({"TWILIO_AUTH_TOKEN": self.auth, "TWILIO_ACCOUNT_SID": self.account,
                    "DUPLEXBOT_PUBLIC_URL": self.base, "DUPLEXBOT_HOST": "127.0.0.1", "DUPLEXBOT_DATA_DIR": data_dir,
                    "DUPLEXBOT_RUNTIME_FILE": str(Path(data_dir) / "redis.json"), **model_env})
        cmd = [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--policy", policy]
        if redis_url:
            env.update(REDIS_URL=redis_url, DUPLEXBOT_STATE="1")
        else:
            env["DUPLEXBOT_STATE"] = "0"
            cmd.append("--no-state")
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)


class EventStream:
    """Reads the engine events every call wrote to the store's global stream (`{prefix}:events`)."""

    def __init__(self, url: str, prefix: str = "dx") -> None:
        import redis.asyncio as aredis

        self.redis = aredis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
        self.key = f"{prefix}:events"

    async def mark(self) -> str:
        last = await self.redis.xrevrange(self.key, count=1)
        return _text(last[0][0]) if last else "0-0"

    async def since(self, mark: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        start = f"({mark}"
        while True:
            batch = await self.redis.xrange(self.key, min=start, count=1000)
            if not batch:
                return out
            for _, raw in batch:
                f = {_text(k): _text(v) for k, v in (raw or {}).items()}
                try:
                    data = json.loads(f.get("data") or "{}")
                except ValueError:
                    data = {}
                out.append({**(data if isinstance(data, dict) else {}), "type": f.get("type", ""),
                            "call_id": f.get("call_id", "")})
            start = f"({_text(batch[-1][0])}"

    async def settle(self, mark: str, calls: int, timeout: float = EVENTS_WAIT) -> list[dict[str, Any]]:
        """The events since `mark`, once `calls` calls have ended in them (or after `timeout`)."""
        t_end = time.monotonic() + timeout
        while True:
            events = await self.since(mark)
            if sum(e["type"] == "call_ended" for e in events) >= calls or time.monotonic() > t_end:
                return events
            await asyncio.sleep(0.25)

    async def close(self) -> None:
        await self.redis.aclose()


def _text(v: bytes | str | None) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v or ""


def speculation_counts(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Speculations started / used / wasted (each `speculation` event of a call's `id` once per
    outcome), the wasted rate (wasted / started) and the median head start of the used ones
    (`ready`: seconds from the speculation's start to the end of turn)."""
    seen: dict[str, set[tuple[str, Any]]] = {"started": set(), "used": set(), "wasted": set()}
    for e in events:
        if e.get("type") == "speculation" and e.get("outcome") in seen:
            seen[str(e["outcome"])].add((str(e.get("call_id", "")), e.get("id")))
    started, used, wasted = (len(seen[k]) for k in ("started", "used", "wasted"))
    ready = [float(e["ready"]) for e in events if e.get("type") == "speculation" and e.get("outcome") == "used"
             and isinstance(e.get("ready"), (int, float))]
    return {"started": started, "used": used, "wasted": wasted,
            "wasted_rate": round(wasted / started, 3) if started else None,
            "head_start_ms_p50": round(float(np.median(ready)) * 1000, 1) if ready else None}


# ------------------------------------------------------------------ one configuration

async def run_config(cfg: Config, phone_set: PhoneSet, audio: dict[str, np.ndarray], stub: LlmStub,
                     events: EventStream | None, redis_url: str, bs: BrainBenchSettings, out: Path,
                     log: Callable[[str], None]) -> dict[str, Any]:
    model_env: dict[str, str] = {}
    if cfg.model is not None:
        stub.set_settings(cfg.model)
        model_env = {"DUPLEXBOT_LLM_BASE_URL": stub.base_url, "DUPLEXBOT_LLM_MODEL": MODEL}
    pb = PhoneBenchSettings(parallel=bs.parallel, policy=bs.policy, window=bs.window)
    slug = cfg.name.replace(" ", "-")
    srv = BrainServer(bs.port or free_port(), bs.policy, out / f"server-{slug}.log", redis_url, model_env,
                      tempfile.mkdtemp(prefix="duplexbot-brain-"))
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await srv.ready(http)
            log(f"{cfg.name}: server ready on {srv.base}; {len(phone_set.samples)} questions, {bs.parallel} at once")
            mark = await events.mark() if events else ""
            requests0 = len(stub.requests)
            cpu0, wall0 = process_cpu_seconds(srv.proc.pid), time.monotonic()
            done = await run_pool(http, srv, [(s, audio[s.id]) for s in phone_set.samples], pb, log)
            cpu, wall = process_cpu_seconds(srv.proc.pid) - cpu0, time.monotonic() - wall0
            await stub.idle()
            requests = len(stub.requests) - requests0
            calls = sum(1 for _, r in done if r.caller_frames)
            evs = await events.settle(mark, calls) if events else None
    finally:
        srv.stop()
    rows = [sample_row(s, r) for s, r in sorted(done, key=lambda d: d[0].id)]
    summary = summarise(rows, cpu, wall, sum(r.caller_frames for _, r in done) * FRAME_S / CHUNK_S)
    answered = (sum(e["type"] == "end_of_turn" for e in evs) if evs
                else sum(1 for r in rows if not r["error"]))
    model_calls = requests if cfg.model is not None else 0
    return {
        "name": cfg.name, "model": asdict(cfg.model) if cfg.model else None,
        "latency_ms": summary["latency_ms"], "unanswered": summary["unanswered"], "errors": summary["errors"],
        "samples": summary["samples"], "turns_taken": answered, "takeovers": summary["takeovers"],
        "model_requests": model_calls,
        "extra_model_calls_per_turn": (round(model_calls / answered - 1, 3)
                                       if cfg.model is not None and answered else None),
        "speculation": speculation_counts(evs) if evs is not None else None,
        "server_events": len(evs) if evs is not None else None,
        "server_cpu_cores": summary["cpu_cores"], "wall_s": summary["wall_s"], "rows": rows,
    }


async def run_bench(bs: BrainBenchSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    out = Path(bs.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    logs = out.with_suffix("")  # the servers' logs: out/bench-brain/server-*.log
    logs.mkdir(parents=True, exist_ok=True)
    phone_set = (load_set(bs.dataset, bs.n) if bs.dataset
                 else question_set(Path(bs.question_set), bs.n, bs.voices, log))
    audio = {s.id: caller_pcm(phone_set, s) for s in phone_set.samples}
    configs = ([Config("offline agent", None)] if bs.offline else []) + [
        Config(f"stub ttft {t * 1000:.0f} ms", StubSettings(ttft=t, words_per_second=bs.words_per_second))
        for t in bs.ttfts]
    report: dict[str, Any] = {
        "bench": "brain", "transport": "twilio media streams over ws://127.0.0.1", "policy": bs.policy,
        "parallel": bs.parallel, "questions": len(phone_set.samples),
        "dataset": bs.dataset or bs.question_set, "settings": asdict(bs), "code": code_commit(),
        "machine": {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
                    "python": platform.python_version(), "load_avg_1m": os.getloadavg()[0]}}
    stub = LlmStub()
    await stub.start()
    valkey, events, note = None, None, ""
    try:
        try:
            from ..state.embedded import EmbeddedValkey

            valkey = EmbeddedValkey()
            await valkey.start()
            events = EventStream(valkey.url)
        except Exception as e:  # noqa: BLE001 - without a store the latencies still count
            note = f"no Valkey for the server's events ({type(e).__name__}: {e}): speculation not counted"
            log(note)
            valkey = None
        report["configs"] = [await run_config(c, phone_set, audio, stub, events, valkey.url if valkey else "",
                                              bs, logs, log) for c in configs]
    finally:
        if events is not None:
            await events.close()
        if valkey is not None:
            await valkey.stop()
        await stub.stop()
    report["note"] = note
    report["machine"]["load_avg_1m_end"] = os.getloadavg()[0]
    out.write_text(json.dumps(report, indent=2))
    return report


# ------------------------------------------------------------------ the table

@dataclass(frozen=True)
class Column:
    head: str
    width: int
    cell: Callable[[dict[str, Any], dict[str, Any] | None], str] = field(repr=False)


def _v(x: Any) -> str:
    return "-" if x is None else f"{x:.0f}" if isinstance(x, float) else str(x)


def _delta(c: dict[str, Any], ref: dict[str, Any] | None) -> str:
    a, b = c["latency_ms"]["p50"], ref["latency_ms"]["p50"] if ref else None
    return "-" if a is None or b is None or c is ref else f"{a - b:+.0f}"


def _spec(key: str) -> Callable[[dict[str, Any], dict[str, Any] | None], str]:
    def cell(c: dict[str, Any], ref: dict[str, Any] | None) -> str:
        s = c["speculation"]
        if s is None:
            return "-"
        v = s[key]
        return "-" if v is None else f"{v * 100:.0f}%" if key == "wasted_rate" else _v(v)
    return cell


COLUMNS = (
    Column("configuration", 18, lambda c, r: c["name"]),
    Column("n", 4, lambda c, r: str(c["samples"])),
    Column("p50 ms", 8, lambda c, r: _v(c["latency_ms"]["p50"])),
    Column("p90 ms", 8, lambda c, r: _v(c["latency_ms"]["p90"])),
    Column("vs offline", 11, _delta),
    Column(">3 s", 6, lambda c, r: str(c["unanswered"])),
    Column("err", 5, lambda c, r: str(c["errors"])),
    Column("spec", 6, _spec("started")),
    Column("used", 6, _spec("used")),
    Column("wasted", 8, _spec("wasted")),
    Column("wasted%", 9, _spec("wasted_rate")),
    Column("head ms", 9, _spec("head_start_ms_p50")),
    Column("calls", 7, lambda c, r: str(c["model_requests"]) if c["model"] else "-"),
    Column("extra/turn", 11, lambda c, r: _v_f(c["extra_model_calls_per_turn"])),
)


def _v_f(x: float | None) -> str:
    return "-" if x is None else f"{x:+.2f}"


def format_table(report: dict[str, Any]) -> str:
    m = report["machine"]
    ref = next((c for c in report["configs"] if c["model"] is None), None)
    lines = [f"Brain bench: {report['questions']} caller questions over {report['transport']} "
             f"(policy {report['policy']}, {report['parallel']} calls at once; {m['platform']}, "
             f"{m['cpu_count']} CPUs, load {m['load_avg_1m']:.1f})",
             "".join(f"{c.head:<{c.width}}" if i == 0 else f"{c.head:>{c.width}}" for i, c in enumerate(COLUMNS))]
    for cfg in report["configs"]:
        lines.append("".join(f"{c.cell(cfg, ref):<{c.width}}" if i == 0 else f"{c.cell(cfg, ref):>{c.width}}"
                             for i, c in enumerate(COLUMNS)))
    lines.append("latency: caller's end of speech -> first audible bot audio the caller hears (answered turns "
                 "without a take-over); >3 s: no audible answer within 3 s; spec/used/wasted: the server's "
                 "speculation events (head ms: median head start of the used ones); calls: requests the model got; "
                 "extra/turn: calls / turns the bot took (its end-of-turn events) - 1")
    if report.get("note"):
        lines.append(report["note"])
    return "\n".join(lines)
