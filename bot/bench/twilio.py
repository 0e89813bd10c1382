"""`duplexbot bench twilio`: scripted phone callers against a real server process over WebSockets on 127.0.0.1.

The server is `duplexbot serve` in its own process (baseline policy, no Redis), so the callers'
own CPU use is not counted as the server's. Every caller is a `TwilioPeer` (Twilio's side of the
protocol, byte for byte), and every number is measured where the caller would notice it:

- response latency: end of the caller's speech -> first bot audio the caller hears;
- barge-in stop latency: onset of the caller's speech over the bot -> bot audio stops for the
  caller (the `clear` arriving, which cuts the frame playing; or the audio running out);
- capacity: simultaneous calls (each greeted, asking a question, hearing the answer) at rising
  levels; a level holds while at most `late_budget` of the bot's frames arrive late (after the
  previous one finished playing: an audible gap) and every call completes. The server's own
  pacer underruns (Prometheus) and the caller process's event-loop lag are reported beside it,
  so a slow client is not mistaken for a slow server.
"""
from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import aiohttp
import numpy as np

from ..audio.resample import resample
from .twilio_peer import TwilioPeer

QUESTIONS = ["What are your opening hours on Saturday?", "Where is the store?", "How long does delivery take?",
             "Can I return a broken kettle?", "How much does the garden chair cost?", "Are you open on Sunday?",
             "What is your address?", "Is delivery free?", "Do you have any offers?", "When will my order arrive?"]
INTERRUPTION = "Wait, stop!"


@dataclass(frozen=True)
class BenchSettings:
    turns: int = 8  # latency phase: question/answer turns (each with a barge-in) over `latency_calls` calls
    latency_calls: int = 2
    levels: tuple[int, ...] = (1, 2, 4, 8, 12, 16, 24, 32)
    listen: float = 4.0  # capacity phase: seconds each caller listens to the answer
    late_budget: float = 0.01  # fraction of late bot frames a level may have and still hold
    policy: str = "baseline"
    out: str = "out/bench-twilio"
    port: int = 0


@dataclass
class CallResult:
    ok: bool = False
    error: str = ""
    latencies: list[float] = field(default_factory=list)
    barge_ins: list[float | None] = field(default_factory=list)  # None: the bot did not stop within 3 s
    frames: int = 0
    late: list[float] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs: list[float], p: float) -> float | None:
    return round(float(np.percentile(xs, p)) * 1000, 1) if xs else None


class ServerProcess:
    """`duplexbot serve` on 127.0.0.1 with Twilio settings for the bench."""

    def __init__(self, port: int, policy: str, log_path: Path, event_log: Path | None = None,
                 env_extra: dict[str, str] | None = None):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.auth = secrets.token_hex(16)
        self.account = "AC" + secrets.token_hex(16)
        env = {**os.environ, "TWILIO_AUTH_TOKEN": self.auth, "TWILIO_ACCOUNT_SID": self.account,
               "DUPLEXBOT_PUBLIC_URL": self.base, "DUPLEXBOT_HOST": "127.0.0.1", "DUPLEXBOT_STATE": "0",
               "DUPLEXBOT_EVENT_LOG": str(event_log or ""), **(env_extra or {})}
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--policy",
                                      policy, "--no-state"], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    async def ready(self, http: aiohttp.ClientSession, timeout: float = 120.0) -> None:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} (log: {self.log.name})")
            try:
                async with http.get(self.base + "/healthz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.25)
        raise RuntimeError("server did not become ready")

    async def metric(self, http: aiohttp.ClientSession, name: str) -> float:
        return (await self.metrics(http, [name]))[name]

    async def metrics(self, http: aiohttp.ClientSession, names: list[str]) -> dict[str, float]:
        """The values of these samples in one read of /metrics (0.0 for one it does not have); a
        name without labels matches its first labelled sample."""
        async with http.get(self.base + "/metrics", timeout=aiohttp.ClientTimeout(total=5)) as r:
            text = await r.text()
        out = {}
        for name in names:
            m = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
            out[name] = float(m.group(1)) if m else 0.0
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


class LoopLag:
    """How late this (caller) process's event loop wakes up: if high, the callers are the bottleneck."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            self.samples.append(time.monotonic() - t - 0.01)

    def start(self) -> None:
        self.samples = []
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> float:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        return round(float(np.percentile(self.samples, 99)) * 1000, 1) if self.samples else 0.0


async def _quiet(p: TwilioPeer, for_s: float, timeout: float) -> bool:
    """Wait until the caller has heard no bot audio for `for_s` seconds."""
    return await p.wait_for(lambda: not p.heard or time.monotonic() - p.heard[-1].end > for_s, timeout)


async def scripted_call(http: aiohttp.ClientSession, srv: ServerProcess, audio: dict[str, np.ndarray],
                        questions: list[str], barge_in: bool, listen: float = 0.0) -> CallResult:
    res = CallResult()
    p = TwilioPeer(srv.base, srv.auth, account_sid=srv.account)
    try:
        await p.dial(http)
        if not await p.wait_for(lambda: p.first_voiced(0) is not None, 15):
            raise RuntimeError("no greeting")
        if not await _quiet(p, 0.6, 30):
            raise RuntimeError("greeting never ended")
        for q in questions:
            u = p.say(audio[q])
            await asyncio.wait_for(u.done.wait(), 20)
            asked = u.voiced_until
            if asked is None:
                raise RuntimeError(f"the question {q!r} was silent")
            await p.wait_for(lambda: p.first_voiced(asked) is not None, 20)
            start = p.first_voiced(asked)
            if start is None:
                raise RuntimeError(f"no answer to {q!r}")
            res.latencies.append(start - asked)
            if barge_in:
                await p.wait_for(lambda: time.monotonic() - start > 1.0, 2)
                b = p.say(audio[INTERRUPTION])
                await p.wait_for(lambda: b.voiced_from is not None, 5)
                onset = b.voiced_from
                if onset is None:
                    raise RuntimeError("the interruption never went out")
                if await p.wait_for(lambda: any(c > onset for c in p.clears), 3):
                    res.barge_ins.append(min(c for c in p.clears if c > onset) - onset)
                else:
                    end = p.audible_until(onset)
                    res.barge_ins.append(end - onset if end - onset < 3 else None)
                await asyncio.wait_for(b.done.wait(), 10)
            elif listen:
                await asyncio.sleep(listen)
            await _quiet(p, 0.8, 30)
        res.ok = True
    except Exception as e:  # noqa: BLE001 - a failed call is a result, not a crash
        res.error = f"{type(e).__name__}: {e}"
    finally:
        res.frames, res.late = p.media_in, list(p.late)
        await p.hang_up()
    return res


async def run_bench(bs: BenchSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    out = Path(bs.out)
    out.mkdir(parents=True, exist_ok=True)
    from hibari import Hibari

    log("rendering caller speech with hibari ...")
    hib = Hibari()
    audio: dict[str, np.ndarray] = {}
    for text in QUESTIONS + [INTERRUPTION]:
        a = np.asarray(hib(text), np.float32)
        audio[text] = resample((np.clip(a, -1, 1) * 32767).astype(np.int16), 24000, 8000)
    port = bs.port or _free_port()
    srv = ServerProcess(port, bs.policy, out / "server.log")
    lag = LoopLag()
    report: dict[str, Any] = {"bench": "twilio", "policy": bs.policy, "transport": "twilio media streams over ws://127.0.0.1",
                    "machine": {"cpu_count": os.cpu_count(), "machine": platform.machine(),
                                "python": platform.python_version(), "load_avg_1m": os.getloadavg()[0]}}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await srv.ready(http)
            log(f"server ready on {srv.base}; latency phase: {bs.turns} turns over {bs.latency_calls} call(s)")
            per_call = -(-bs.turns // bs.latency_calls)
            lat: list[float] = []
            barge: list[float | None] = []
            errors: list[str] = []
            for i in range(bs.latency_calls):
                qs = [QUESTIONS[(i * per_call + k) % len(QUESTIONS)] for k in range(per_call)]
                r = await scripted_call(http, srv, audio, qs, barge_in=True)
                lat += r.latencies
                barge += r.barge_ins
                if r.error:
                    errors.append(r.error)
            stopped = [b for b in barge if b is not None]
            report["latency"] = {
                "turns": len(lat), "errors": errors,
                "response_latency_ms": {"p50": _pct(lat, 50), "p90": _pct(lat, 90), "max": _pct(lat, 100)},
                "barge_in_stop_ms": {"p50": _pct(stopped, 50), "p90": _pct(stopped, 90), "max": _pct(stopped, 100)},
                "barge_ins": len(barge), "barge_ins_not_stopped": len(barge) - len(stopped),
            }
            log(f"capacity phase: levels {list(bs.levels)}")
            levels: list[dict[str, Any]] = []
            held = 0
            for n in bs.levels:
                under0 = await srv.metric(http, "duplexbot_twilio_underruns_total")
                lag.start()

                async def one(k: int) -> CallResult:
                    await asyncio.sleep(k * min(0.1, 1.0 / n))  # callers ring in over about a second
                    return await scripted_call(http, srv, audio, [QUESTIONS[k % len(QUESTIONS)]], False, bs.listen)
                results = await asyncio.gather(*(one(k) for k in range(n)))
                client_lag = await lag.stop()
                under = await srv.metric(http, "duplexbot_twilio_underruns_total") - under0
                frames = sum(r.frames for r in results)
                late = [g for r in results for g in r.late]
                lats = [x for r in results for x in r.latencies]
                failed = [r.error for r in results if not r.ok]
                late_frac = len(late) / frames if frames else 1.0
                ok = not failed and late_frac <= bs.late_budget
                lv: dict[str, Any] = {
                    "calls": n, "completed": n - len(failed), "bot_frames": frames, "late_frames": len(late),
                    "late_fraction": round(late_frac, 4), "worst_gap_ms": round(max(late) * 1000, 1) if late else 0.0,
                    "server_underruns": int(under), "client_loop_lag_p99_ms": client_lag,
                    "response_latency_ms": {"p50": _pct(lats, 50), "p90": _pct(lats, 90)},
                    "holds": ok, "errors": failed[:3]}
                levels.append(lv)
                log(f"  {n:>3} calls: late {len(late)}/{frames} frames, server underruns {int(under)}, "
                    f"response p50 {lv['response_latency_ms']['p50']} ms, client lag p99 {client_lag} ms"
                    f"{'' if ok else '  <- does not hold'}")
                if not ok:
                    break
                held = n
            report["capacity"] = {"levels": levels, "max_calls_on_time": held,
                                  "late_budget": bs.late_budget, "listen_s": bs.listen}
    finally:
        srv.stop()
    report["machine"]["load_avg_1m_end"] = os.getloadavg()[0]
    (out / "bench_twilio.json").write_text(json.dumps(report, indent=2))
    return report


def format_table(report: dict[str, Any]) -> str:
    lt = report["latency"]
    r, b = lt["response_latency_ms"], lt["barge_in_stop_ms"]
    lines = [f"Twilio bench (policy {report['policy']}, {report['transport']})",
             f"{'metric':<34}{'p50 ms':>10}{'p90 ms':>10}{'max ms':>10}{'n':>6}",
             f"{'response latency (caller hears)':<34}{r['p50']!s:>10}{r['p90']!s:>10}{r['max']!s:>10}{lt['turns']:>6}",
             f"{'barge-in stop (caller hears)':<34}{b['p50']!s:>10}{b['p90']!s:>10}{b['max']!s:>10}"
             f"{lt['barge_ins'] - lt['barge_ins_not_stopped']:>6}"]
    if lt["barge_ins_not_stopped"]:
        lines.append(f"  ({lt['barge_ins_not_stopped']} barge-in(s) did not stop the bot within 3 s)")
    cap = report.get("capacity", {})
    lines.append("")
    lines.append(f"{'calls':>6}{'done':>6}{'late frames':>14}{'worst gap ms':>14}{'srv underruns':>15}"
                 f"{'resp p50 ms':>13}{'client lag p99':>16}  holds")
    for lv in cap.get("levels", []):
        lines.append(f"{lv['calls']:>6}{lv['completed']:>6}{str(lv['late_frames']) + '/' + str(lv['bot_frames']):>14}"
                     f"{lv['worst_gap_ms']:>14}{lv['server_underruns']:>15}{lv['response_latency_ms']['p50']!s:>13}"
                     f"{lv['client_loop_lag_p99_ms']:>16}  {'yes' if lv['holds'] else 'NO'}")
    lines.append(f"simultaneous calls on time (late frames <= {cap.get('late_budget', 0) * 100:.1f}%): "
                 f"{cap.get('max_calls_on_time', 0)}")
    return "\n".join(lines)
