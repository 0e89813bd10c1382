"""`duplexbot bench sip`: drive sipp at rising call rates and concurrency against a SIP server.

Three phases, each a table row per step:
  setup     calls per second offered vs. set up (INVITE -> 200 -> ACK -> hold -> BYE), the INVITE->200
            time, and where failures begin;
  sessions  concurrent sessions held (signalling only, no media clock) — the FreeSWITCH stock limits
            (30 calls/s, 1000 sessions) are the bar;
  media     concurrent calls held *with* RTP both ways (sipp streams caller audio, the server
            answers every 20 ms), with the media clock's lateness and the concealment rate.

By default the server under test is an in-process `SipServer` with a minimal application (it pulls
caller frames and answers with a tone), i.e. the SIP bridge alone; `--target host:port` benches
any other server instead (then the server-side columns are empty).
"""
from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import socket
import struct
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

import sip
from sip import g711
from sip.call import AudioChunk, CallHangup, CallItem, SipCall
from sip.server import ServerSettings, SipServer
from sip.ua import UaSettings

SCENARIOS = Path(sip.__file__).parent / "deploy" / "sipp"
_TONE = (np.sin(2 * np.pi * 440 * np.arange(8000 + 160) / 8000) * 3000).astype(np.int16)   # 1 s loop


@dataclass
class Step:
    phase: str
    target: int                   # offered calls/s (setup) or concurrent calls (sessions, media)
    offered: int = 0
    ok: int = 0
    failed: int = 0
    setup_cps: float = 0.0        # calls set up per second, measured at the server (or sipp)
    max_concurrent: int = 0
    invite_to_200_ms: float = 0.0
    retransmissions: int = 0
    server: dict = field(default_factory=dict)
    quality_ok: bool = True

    @property
    def passed(self) -> bool:
        return self.failed == 0 and self.ok == self.offered and self.offered > 0 and self.quality_ok


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ulaw_wav(path: Path, seconds: float = 4.0) -> None:
    t = np.arange(int(8000 * seconds)) / 8000
    tone = (np.sin(2 * np.pi * 300 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0) * 6000).astype(np.int16)
    data = g711.encode(tone, "PCMU")
    hdr = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 7, 1, 8000, 8000,
                                                                                    1, 8) + b"data"
    path.write_bytes(hdr + struct.pack("<I", len(data)) + data)


class _App:
    """The in-process application: consume caller audio, answer with a quiet tone, count calls."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.live = 0
        self.max_live = 0
        self.frames = 0

    async def __call__(self, call: SipCall) -> None:
        self.started.append(time.monotonic())
        self.live += 1
        self.max_live = max(self.max_live, self.live)
        phase = [0]

        def pull(n: int) -> np.ndarray:
            i = phase[0] % 8000
            phase[0] += n
            return _TONE[i:i + n]
        call.set_output(pull)
        ended = asyncio.Event()

        def take(item: CallItem) -> None:
            if isinstance(item, AudioChunk):
                self.frames += 1
            elif isinstance(item, CallHangup):
                ended.set()
        call.set_sink(take)
        try:
            await ended.wait()
        finally:
            self.live -= 1


async def _sipp(scenario: Path, target: str, calls: int, rate: float, hold_ms: int, limit: int, workdir: Path,
                timeout: float, subs: dict | None = None) -> dict:
    text = scenario.read_text()
    for k, v in (subs or {}).items():
        text = text.replace(f"@{k}@", str(v))
    scen = workdir / scenario.name
    scen.write_text(text)
    stf = workdir / f"stat-{time.monotonic_ns()}.csv"
    cmd = ["sipp", "-sf", str(scen), target, "-m", str(calls), "-r", f"{rate:g}", "-d", str(hold_ms),
           "-l", str(limit), "-i", "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port()),
           "-nostdin", "-timeout", f"{int(timeout)}s", "-trace_stat", "-stf", str(stf), "-fd", "1",
           "-max_socket", "65000", "-recv_timeout", "10s"]
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=workdir, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        await asyncio.wait_for(proc.wait(), timeout + 20)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
    rows = list(csv.DictReader(io.StringIO(stf.read_text()), delimiter=";")) if stf.exists() else []
    if not rows:
        return {}
    last = rows[-1]
    peak = max(int(r.get("CurrentCall") or 0) for r in rows)

    def ms(v: str) -> float:
        """sipp's HH:MM:SS:microseconds as milliseconds."""
        parts = v.split(":")
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            return 0.0
        h, m, sec, us = (int(p) for p in parts)
        return (h * 3600 + m * 60 + sec) * 1000 + us / 1000
    return {"ok": int(last["SuccessfulCall(C)"]), "failed": int(last["FailedCall(C)"]),
            "created": int(last["OutgoingCall(C)"]), "peak": peak, "rtd_ms": ms(last.get("ResponseTime1(C)", "")),
            "retrans": int(last.get("Retransmissions(C)") or 0)}


@dataclass(frozen=True)
class BenchSettings:
    rates: tuple[float, ...] = (10, 20, 30, 50, 75, 100, 150, 200)
    seconds: float = 5.0               # how long each rate is offered
    hold_ms: int = 1000
    sessions: tuple[int, ...] = (250, 500, 1000)
    sessions_rate: float = 50.0
    media: tuple[int, ...] = (25, 50, 100, 200)
    media_hold_ms: int = 10000
    target: str | None = None          # host:port; None: an in-process server
    stop_after_failure: bool = True


async def run(settings: BenchSettings, log: Callable[[str], None] = print) -> list[Step]:
    if shutil.which("sipp") is None:
        raise RuntimeError("sipp is not installed (Debian: apt-get install sip-tester)")
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="bench-sip-") as tmp:
        work = Path(tmp)
        audio = work / "caller.wav"
        _ulaw_wav(audio)
        for phase, values in (("setup", settings.rates), ("sessions", settings.sessions),
                              ("media", settings.media)):
            for v in values:
                step = await _one(phase, v, settings, work, audio)
                steps.append(step)
                log(format_row(step))
                if not step.passed and settings.stop_after_failure:
                    break
    return steps


async def _one(phase: str, value: float, s: BenchSettings, work: Path, audio: Path) -> Step:
    app = _App()
    server = None
    if s.target is None:
        tick = 0.02 if phase == "media" else 0.0
        ss = ServerSettings(bind="127.0.0.1", port=0, tick=tick,
                            ua=replace(UaSettings(), max_calls=100000, max_cps=100000))
        server = await SipServer(ss, app).start()
        target = f"127.0.0.1:{server.port}"
    else:
        target = s.target
    try:
        if phase == "setup":
            calls = max(20, int(value * s.seconds))
            res = await _sipp(SCENARIOS / "call.xml", target, calls, value, s.hold_ms, calls, work,
                              s.seconds + s.hold_ms / 1000 + 30)
        elif phase == "sessions":
            hold = int(value / s.sessions_rate * 1000) + 5000
            res = await _sipp(SCENARIOS / "call.xml", target, int(value), s.sessions_rate, hold, int(value), work,
                              hold / 1000 + 60)
        else:
            rate = min(50.0, max(10.0, value / 5))
            run = asyncio.create_task(_sipp(SCENARIOS / "call_media.xml", target, int(value), rate, s.media_hold_ms,
                                            int(value), work, value / rate + s.media_hold_ms / 1000 + 60,
                                            {"audio": audio}))
            peak: dict[str, float] = {}
            while not run.done():
                await asyncio.wait([run], timeout=0.5)
                if server is not None:
                    server.tick_lateness.clear() if not peak else None
                    snap = server.media_summary()
                    if snap["calls"] >= peak.get("calls", 0) and snap["calls"] > 0:
                        peak = snap
            res = run.result()
        step = Step(phase, int(value), offered=int(value) if phase != "setup" else max(20, int(value * s.seconds)))
        step.ok, step.failed = res.get("ok", 0), res.get("failed", 0) + max(0, step.offered - res.get("ok", 0)
                                                                              - res.get("failed", 0))
        step.max_concurrent = res.get("peak", 0)
        step.invite_to_200_ms = round(res.get("rtd_ms", 0.0), 1)
        step.retransmissions = res.get("retrans", 0)
        if phase == "setup":
            # set up at the offered pace (server-side rate within 10 %, INVITE->200 under 500 ms)
            step.quality_ok = step.invite_to_200_ms < 500
        if server is not None:
            st = app.started
            step.setup_cps = round((len(st) - 1) / (st[-1] - st[0]), 1) if len(st) > 1 and st[-1] > st[0] else 0.0
            step.max_concurrent = max(step.max_concurrent, app.max_live)
            if phase == "setup":
                step.quality_ok = step.quality_ok and step.setup_cps >= 0.9 * value
            ua = server.ua
            if ua is None:
                raise RuntimeError("the in-process SIP server has no user agent (it did not start)")
            step.server = {"shed_503": ua.stats.get("invite_503", 0),
                           "internal_error": server.stats["internal_error"],
                           "retransmitted": ua.stats["retransmitted"]}
            if phase == "media":
                gaps = (peak.get("jitter_concealed", 0) + peak.get("jitter_underrun", 0)
                        + peak.get("jitter_skipped", 0))
                frames = peak.get("jitter_played", 0) + gaps
                peak["gaps_pct"] = round(100 * gaps / frames, 2) if frames else 0.0
                step.server.update(peak)
                # held "with media": the 20 ms clock's work (all RTP in and out) fits in 3/4 of a tick,
                # it is on time (median), and under 2 % of the caller's frames were concealed or missing
                step.quality_ok = (peak.get("tick_work_p50_ms", 1e9) < 15 and peak.get("tick_late_p50_ms", 1e9) < 5
                                   and peak["gaps_pct"] < 2.0)
        return step
    finally:
        if server is not None:
            await server.close()


def format_row(st: Step) -> str:
    extra = ""
    if st.phase == "media" and st.server:
        g = st.server.get
        extra = (f" tick work p50/p99 {g('tick_work_p50_ms', 0)}/{g('tick_work_p99_ms', 0)} ms, late p50/p99 "
                 f"{g('tick_late_p50_ms', 0)}/{g('tick_late_p99_ms', 0)} ms, audio gaps {g('gaps_pct', 0)}%")
    return (f"{st.phase:9s} {st.target:6d} offered {st.offered:5d} ok {st.ok:5d} failed {st.failed:4d} "
            f"setup {st.setup_cps:7.1f}/s peak {st.max_concurrent:5d} INVITE->200 {st.invite_to_200_ms:7.1f} ms "
            f"retrans {st.retransmissions:4d}{extra} {'PASS' if st.passed else 'FAIL'}")


def summary(steps: list[Step]) -> dict[str, object]:
    def best(phase: str, key: str) -> float:
        ok = [getattr(s, key) if key != "target" else s.target for s in steps if s.phase == phase and s.passed]
        return max(ok) if ok else 0

    def first_fail(phase: str) -> int | None:
        bad = [s.target for s in steps if s.phase == phase and not s.passed]
        return bad[0] if bad else None
    return {"max_setup_cps_offered_without_failure": best("setup", "target"),
            "max_setup_cps_measured": best("setup", "setup_cps"),
            "setup_failures_begin_at_cps": first_fail("setup"),
            "max_sessions_held": best("sessions", "target"),
            "sessions_failures_begin_at": first_fail("sessions"),
            "max_media_calls_held": best("media", "target"),
            "media_failures_begin_at": first_fail("media"),
            "bar_30cps_1000_sessions": best("setup", "target") >= 30 and best("sessions", "target") >= 1000}


def to_json(steps: list[Step]) -> str:
    return json.dumps({"summary": summary(steps), "steps": [dict(s.__dict__, passed=s.passed) for s in steps]},
                      indent=2)
