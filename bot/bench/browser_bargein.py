"""`duplexbot bench bargein-browser`: the caller's first interruption over the bot, in a real browser.

Each run is a fresh headless Chromium (Debian's `/usr/bin/chromium`, driven over the DevTools
protocol with aiohttp; no browser download) whose fake microphone plays a WAV file: silence
through the greeting, "What are your opening hours?", then, over the bot's 7 s answer, one
interruption ("Wait, stop.", "Hold on a second.", ...). Phrasing, voice (hibari "heart" styles,
as `bot/eval/phone_data.py` makes them, and espeak-ng) and the moment it is spoken vary per
run. The page is the bot's own call page (`/`, its capture constraints and its stopwatch,
`bot/web/static/stopwatch.js`); the server is the real one (`build_app`, real engine, duplex
policy) on 127.0.0.1 in this process, so the engine's view of the overlap can be recorded too.

Per run, measured where each happens:
- stopped: the engine decided a barge-in on this first interruption (`barge_in` within 2.5 s of
  the caller's onset over the answer) *and* the browser heard the bot's audio drop (the page's
  stopwatch paired a stop with it);
- engine: the barge-in's decision time after the caller's onset (stream time, the engine's view);
- heard below 10 % / silent: the caller's onset at the page's microphone -> the bot's audio on the
  remote track below 10 % / 1 % of its level and staying there 200 ms (the page's stopwatch);
- for every run the engine's trace over the overlap: the VAD, p(interrupt), p(backchannel) per
  32 ms chunk, and the level of the bot reference the duplex model was given (a silent reference
  while the bot talks means the model cannot tell an interruption from a turn), so a miss can be
  told apart: VAD never fired, backchannel decided, or no decision at all.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import numpy as np

from .cdp import CHROMIUM, Browser, CDPError

if TYPE_CHECKING:
    from ..audio.frame import AudioFrame
    from ..engine.session import CallSession
    from ..policy.base import Decision, Observation
    from ..runtime import Runtime

RATE = 48000  # the fake capture file's rate
QUESTION = "What are your opening hours?"
ANSWER = "nine in the morning"  # a phrase of the hours answer (about 7 s of speech)
LEAD = 8.0  # seconds of silence before the question: the greeting plays over it
# (phrase, voice) per run, cycled; the voice is a hibari style or an espeak-ng variant
INTERRUPTIONS = ["Wait, stop.", "Hold on a second.", "Sorry, stop there.", "No wait, that's wrong.",
                 "Excuse me, stop."]
VOICES = ["heart", "deep", "high", "espeak:en-us+edward2", "bright", "espeak:en-gb+iven3", "low-fast",
          "breathy", "espeak:en-us+steph2", "dark"]
# seconds from the end of the question to the interruption: 1-4.5 s into the bot's answer
DELAYS = [3.0, 4.5, 3.5, 5.5, 2.5, 5.0, 4.0, 6.0, 3.2, 4.8]
CATCH_WINDOW = 2.5  # a barge-in later than this after the onset is not this interruption's


@dataclass(frozen=True)
class BenchSettings:
    runs: int = 10
    out: str = "out/bench-browser-bargein"
    echo: str = "auto"  # the page's ?echo=: auto (its default: cancel only an echo it hears), on, off
    codec: str = ""  # "" the page's default, else opus or PCMU
    policy: str = "duplex"
    tenant: str = ""  # "" the bot's default tenant (or the only configured one)
    first: int = 0  # index of the first run's variant (phrase, voice, moment)
    wait_idle: float = 0.0  # seconds to wait for the load average to fall below 2 before each run


@dataclass(frozen=True)
class Variant:
    phrase: str
    voice: str
    delay: float  # seconds after the question

    def to_dict(self) -> dict[str, object]:
        return {"phrase": self.phrase, "voice": self.voice, "delay_s": self.delay}


def variant(i: int) -> Variant:
    return Variant(INTERRUPTIONS[i % len(INTERRUPTIONS)], VOICES[i % len(VOICES)], DELAYS[i % len(DELAYS)])


# ------------------------------------------------------------------ caller audio

class CallerVoices:
    """The caller's speech at 48 kHz in a named voice: hibari "heart" styles (pitch, formants, speed
    moved in its vocoder, `bot.eval.phone_data.HIBARI_STYLES`) or espeak-ng variants. Offline."""

    def __init__(self) -> None:
        self._hibari: Any = None
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def say(self, text: str, voice: str) -> np.ndarray:
        key = (text, voice)
        if key not in self._cache:
            self._cache[key] = self._render(text, voice)
        return self._cache[key]

    def _render(self, text: str, voice: str) -> np.ndarray:
        from ..audio.resample import resample
        from ..eval import phone_data as pd

        x: np.ndarray
        if voice.startswith("espeak:"):
            lang, _, var = voice[len("espeak:"):].partition("+")
            speed, pitch = next(((s, p) for la, v, s, p in pd.ESPEAK_HELD_OUT if la == lang and v == var), (170, 50))
            x = pd.EspeakVoice(lang, var, speed, pitch).synth(text)
        else:
            style = next((s for s in pd.HIBARI_STYLES if s[0] == voice), None)
            if style is None:
                raise ValueError(f"unknown voice {voice!r}: hibari styles {[s[0] for s in pd.HIBARI_STYLES]} "
                                 "or espeak:LANG+VARIANT")
            if self._hibari is None:
                self._hibari = pd.HibariModel()
            x = pd.HibariStyleVoice(*style, model=self._hibari).synth(text)
        x = resample(np.asarray(x, np.float32), pd.RATE, RATE)
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        return (x * (0.5 / peak) if peak > 0 else x).astype(np.float32)  # every voice at one speaking level

    def capture_file(self, path: Path, v: Variant, question_voice: str | None = None) -> tuple[Path, dict[str, float]]:
        """The fake microphone: LEAD s of silence, the question, `v.delay` s, the interruption, 40 s
        of silence (Chromium loops the file). Returns the file and where each part lies in it."""
        from ..audio.wav import write_wav

        q = self.say(QUESTION, question_voice or v.voice)
        w = self.say(v.phrase, v.voice)
        z = lambda s: np.zeros(int(s * RATE), np.float32)  # noqa: E731
        audio = np.concatenate([z(LEAD), q, z(v.delay), w, z(40.0)])
        write_wav(path, audio, RATE)
        q_end = LEAD + q.size / RATE
        return path, {"question_start": LEAD, "question_end": round(q_end, 3),
                      "interruption_start": round(q_end + v.delay, 3),
                      "interruption_s": round(w.size / RATE, 3)}


# ------------------------------------------------------------------ a minimal DevTools driver

# ------------------------------------------------------------------ the engine's side of the overlap

def _db(x: np.ndarray) -> float:
    v = float(np.sqrt(np.mean(np.square(x.astype(np.float64) / 32768.0)))) if x.size else 0.0
    return round(20 * math.log10(v), 1) if v > 1e-5 else -100.0


@dataclass
class EngineTrace:
    """Per 32 ms chunk: the policy's inputs (VAD, the duplex heads, whether the bot was playing)
    and the levels of the caller chunk and of the bot reference the model was given with it."""
    rows: list[list[float]] = field(default_factory=list)  # t, vad, bot_speaking, p_int, p_bc, p_eot, wall (epoch s)
    ref: dict[float, tuple[float, float]] = field(default_factory=dict)  # chunk start -> (caller dB, bot dB)

    def attach(self, session: "CallSession") -> Callable[[], None]:
        policy = session.policy
        step = policy.step

        def traced(obs: "Observation") -> list["Decision"]:
            m = obs.model
            self.rows.append([round(obs.t, 3), round(obs.vad, 3), float(obs.bot_speaking),
                              -1.0 if m is None else round(m.interrupt, 3),
                              -1.0 if m is None else round(m.backchannel, 3), -1.0 if m is None else round(m.eot, 3),
                              time.time()])
            return step(obs)

        def tap(caller: "AudioFrame", bot: "AudioFrame") -> None:
            self.ref[round(caller.timestamp, 3)] = (_db(caller.pcm), _db(bot.pcm))

        setattr(policy, "step", traced)  # the session looks the method up on every chunk
        untap = session.add_audio_tap(tap)

        def detach() -> None:
            untap()
            if getattr(policy, "step", None) is traced:
                delattr(policy, "step")
        return detach

    def wall_at(self, t: float) -> float | None:
        """When (epoch seconds) the engine processed the chunk ending at stream time `t` or just after."""
        return next((r[6] for r in self.rows if r[0] >= t - 1e-6), None)

    def window(self, t0: float, t1: float) -> list[dict[str, float]]:
        out = []
        for t, vad, speaking, p_int, p_bc, p_eot, _ in self.rows:
            if t0 <= t <= t1:
                lv = self.ref.get(round(t - 0.032, 3), (-100.0, -100.0))
                out.append({"t": t, "vad": vad, "bot_speaking": bool(speaking), "p_interrupt": p_int,
                            "p_backchannel": p_bc, "p_eot": p_eot, "caller_db": lv[0], "bot_ref_db": lv[1]})
        return out


# ------------------------------------------------------------------ one run

def _find(events: list[dict[str, Any]], kind: str, after: float = -1.0, pred: Callable[[dict[str, Any]], bool]
          = lambda e: True) -> dict[str, Any] | None:
    return next((e for e in events if e.get("type") == kind and e.get("t", 0.0) >= after and pred(e)), None)


def _ms(v: float | None) -> int | None:
    return None if v is None else round(1000 * v)


async def one_run(rt: "Runtime", base_url: str, bs: BenchSettings, voices: CallerVoices, i: int,
                  workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    v = variant(bs.first + i)
    wav, parts = voices.capture_file(workdir / f"caller-{i}.wav", v)
    query = [f"tenant={bs.tenant}"] if bs.tenant else []
    if bs.echo != "auto":
        query.append(f"echo={bs.echo}")
    res: dict[str, Any] = {"run": i, **v.to_dict(), "capture_file": parts, "stopped": False, "outcome": ""}
    browser = Browser(wav, "bench")
    trace = EngineTrace()
    detach: Callable[[], None] | None = None
    t_start = time.monotonic()
    try:
        await browser.start()
        page = await browser.new_page(base_url + "/" + ("?" + "&".join(query) if query else ""))
        await page.wait("document.querySelector('#tenant').value !== ''", 10, "the call page's tenant")
        if bs.codec:
            await page.js(f"document.querySelector('#codec').value = {json.dumps(bs.codec)}")
        await page.js("document.querySelector('#call').click()")
        call_id = await page.wait("window.duplexbot.connected && window.duplexbot.callId", 15, "the call to connect")
        # the page can see its peer connected before the server has started the engine session:
        # its call_started event reaches the page only once the session exists
        await page.wait("window.duplexbot.events.some(e => e.type === 'call_started')", 15, "the engine session")
        session = rt.calls.get(str(call_id))
        if session is not None:
            detach = trace.attach(session)
        ev = "window.duplexbot.events"
        answer_js = f"{ev}.find(e => e.type === 'bot_speech_start' && (e.text || '').includes('{ANSWER}'))"
        try:
            await page.wait(answer_js, 45, "the hours answer")
        except TimeoutError:
            res["outcome"] = "no answer"
        if not res["outcome"]:
            try:  # a barge-in, the answer's end, or 20 s
                await page.wait(f"{ev}.some(e => e.type === 'barge_in') || {ev}.some(e => e.type === "
                                   f"'bot_speech_stop' && e.turn === ({answer_js}).turn)", 20, "barge-in or the end")
            except TimeoutError:
                pass
            # the stopwatch gives up 2.5 s after an onset: let it finish (or pair the stop)
            try:
                await page.wait("window.duplexbot.stops.length > 0", 3.0, "the stop heard")
            except TimeoutError:
                pass
        events: list[dict[str, Any]] = await page.js(f"{ev}") or []
        res["measurements"] = await page.js("window.duplexbot.measurements")
        stops = await page.js("window.duplexbot.stops") or []
        res["capture"] = await page.js("window.duplexbot.capture")
        res["echo"] = await page.js("window.duplexbot.echo")
        res["network"] = await page.js("window.duplexbot.network.browser")
        res["bot_said"] = [e.get("text", "") for e in events if e.get("type") == "bot_speech_start"]
        if not res["outcome"]:
            _judge(res, events, stops, trace, float(await page.js("performance.timeOrigin") or 0.0))
        if not res["stopped"]:
            (workdir / "misses").mkdir(exist_ok=True)
            await page.screenshot(workdir / "misses" / f"run-{i}.png")
        await page.js("document.querySelector('#hangup').click()")
        res["page_errors"] = list(page.errors)
    except (CDPError, TimeoutError, aiohttp.ClientError, OSError) as e:
        res["outcome"] = res["outcome"] or f"error: {e}"
    finally:
        if detach is not None:
            detach()
        await browser.close()
        res["wall_s"] = round(time.monotonic() - t_start, 1)
    deadline = time.monotonic() + 15
    while rt.calls.live() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    log(f"run {i}: {v.phrase!r} ({v.voice}, +{v.delay:.1f} s): {res['outcome']}"
        + (f", engine {res.get('engine_ms')} ms, heard {res.get('heard_drop_ms')} / {res.get('heard_silent_ms')} ms"
           if res["stopped"] else ""))
    return res


def _judge(res: dict[str, Any], events: list[dict[str, Any]], stops: list[dict[str, Any]],
           trace: EngineTrace, origin: float) -> None:
    """Whether the first interruption over the answer stopped the bot, and if not, why."""
    answer = _find(events, "bot_speech_start", pred=lambda e: ANSWER in (e.get("text") or ""))
    assert answer is not None
    a_t = float(answer["t"])
    a_end = _find(events, "bot_speech_stop", a_t, lambda e: e.get("turn") == answer.get("turn"))
    res["answer_t"] = round(a_t, 3)
    onset_ev = _find(events, "caller_speech_start", a_t)
    barge = _find(events, "barge_in", a_t)
    onset = float(barge["onset"]) if barge is not None and barge.get("onset") else (
        float(onset_ev["t"]) - 0.25 if onset_ev is not None else None)  # VAD's start lags the onset by min_speech
    if onset is None or (a_end is not None and a_end.get("reason") == "done" and onset > float(a_end["t"])):
        res["outcome"] = ("interruption after the answer" if onset is not None
                          else "VAD: no caller speech over the answer")
        trace_from = a_t + 1.0
    else:
        res["onset_t"] = round(onset, 3)
        res["into_answer_s"] = round(onset - a_t, 2)
        trace_from = onset - 0.3
        if barge is not None and float(barge["t"]) - onset <= CATCH_WINDOW:
            res.update(engine_ms=_ms(max(0.0, float(barge["t"]) - onset)), reason=barge.get("reason", ""),
                       confidence=round(float(barge.get("confidence") or 0.0), 3))
            if stops:
                s = stops[0]
                res.update(stopped=True, outcome="stopped", heard_drop_ms=_ms(s.get("drop")),
                           heard_silent_ms=_ms(s.get("silent")))
                # one clock for both (this machine's): the caller's onset at the page's microphone ->
                # the engine's decision (uplink, jitter buffer, inference queue, the decision itself);
                # the rest of the heard stop is the way back (audio already sent, the page's playout)
                paired = next((x for x in res.get("measurements") or [] if x.get("paired")), None)
                wall = trace.wall_at(float(barge["t"]))
                if paired is not None and wall is not None and origin:
                    up = wall * 1000 - (origin + float(paired["onset"]))
                    res["decided_wall_ms"] = round(up)
                # the stop cannot be heard before the engine decided it: a drop below 10 % before that is a
                # soft passage of the bot's speech running into the stop; then the stop heard is the silence
                early = res.get("decided_wall_ms") is not None and res["heard_drop_ms"] is not None and \
                    res["heard_drop_ms"] < res["decided_wall_ms"]
                res["drop_before_decision"] = early
                res["heard_stop_ms"] = res["heard_silent_ms"] if early else res["heard_drop_ms"]
                if res.get("decided_wall_ms") is not None and res["heard_stop_ms"] is not None:
                    res["back_ms"] = res["heard_stop_ms"] - res["decided_wall_ms"]
            else:
                res["outcome"] = "engine stopped, browser did not hear the bot drop"
        else:
            bc = _find(events, "backchannel", onset - 0.1)
            late = f" (barge-in {float(barge['t']) - onset:.2f} s after the onset)" if barge is not None else ""
            res["outcome"] = (f"backchannel ({bc.get('reason', '')})" if bc is not None and
                              (barge is None or float(bc["t"]) < float(barge["t"])) else "no decision") + late
    win = trace.window(trace_from, trace_from + 3.0)
    res["trace"] = win
    over = [r for r in win if r["bot_speaking"] and r["vad"] >= 0.5]
    res["overlap"] = {
        "chunks_voiced": len(over),
        "max_p_interrupt": max((r["p_interrupt"] for r in over), default=None),
        "max_p_backchannel": max((r["p_backchannel"] for r in over), default=None),
        "bot_ref_db_median": (float(np.median([r["bot_ref_db"] for r in over])) if over else None),
        "caller_db_median": (float(np.median([r["caller_db"] for r in over])) if over else None),
    }
    res["events"] = [[e.get("type"), round(float(e.get("t", 0.0)), 3),
                      e.get("reason") or e.get("text") or "", e.get("confidence")]
                     for e in events if a_t - 0.5 <= float(e.get("t", 0.0)) <= a_t + 12
                     and e.get("type") not in ("speculation",)]


# ------------------------------------------------------------------ the bench

def _pct(xs: list[int], p: float) -> int | None:
    return int(round(float(np.percentile(xs, p)))) if xs else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if r["stopped"]]
    out: dict[str, Any] = {"runs": len(runs), "stopped": len(ok)}
    for key in ("engine_ms", "heard_drop_ms", "heard_silent_ms", "heard_stop_ms", "decided_wall_ms", "back_ms"):
        xs = [int(r[key]) for r in ok if r.get(key) is not None]
        out[key] = {"p50": _pct(xs, 50), "p90": _pct(xs, 90), "min": min(xs, default=None),
                    "max": max(xs, default=None), "n": len(xs)}
    out["outcomes"] = {o: sum(1 for r in runs if r["outcome"] == o) for o in sorted({r["outcome"] for r in runs})}
    return out


def machine() -> dict[str, Any]:
    try:
        chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        chromium = ""
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "chromium": chromium}


async def _wait_idle(seconds: float, log: Callable[[str], None]) -> None:
    deadline = time.monotonic() + seconds
    while os.getloadavg()[0] >= 2.0 and time.monotonic() < deadline:
        await asyncio.sleep(5)
    if os.getloadavg()[0] >= 2.0:
        log(f"load average still {os.getloadavg()[0]:.2f}; running anyway")


async def run_bench(bs: BenchSettings, log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} not found: install Debian's chromium package")
    from aiohttp import web

    from ..runtime import Runtime
    from ..server import build_app
    from ..settings import Settings

    out = Path(bs.out)
    out.mkdir(parents=True, exist_ok=True)
    before = machine()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    voices = CallerVoices()
    settings = Settings.for_tests(policy_name=bs.policy, state_enabled=False)
    rt = await Runtime.start(settings)
    runner = web.AppRunner(build_app(rt), shutdown_timeout=2.0)
    runs: list[dict[str, Any]] = []
    loads: list[list[float]] = []
    try:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        log(f"server {base} (policy {rt.services.duplex_model is not None and 'duplex' or 'baseline'}); "
            f"load average {before['load_average']}")
        with tempfile.TemporaryDirectory(prefix="duplexbot-bench-audio-") as tmp:
            work = Path(tmp)
            for i in range(bs.runs):
                if bs.wait_idle > 0:
                    await _wait_idle(bs.wait_idle, log)
                loads.append([round(x, 2) for x in os.getloadavg()])
                r = await one_run(rt, base, bs, voices, i, work, log)
                r["load_average"] = loads[-1]
                runs.append(r)
                if (work / "misses" / f"run-{i}.png").exists():
                    shutil.copy(work / "misses" / f"run-{i}.png", out / f"miss-{i}.png")
    finally:
        await runner.cleanup()
        try:
            await asyncio.wait_for(rt.close(), 15)
        except asyncio.TimeoutError:
            pass
    report: dict[str, Any] = {
        "bench": "bargein-browser", "started": started, "settings": bs.__dict__,
        "capture": {"auto": "the page's default: NS/AGC off, echo cancellation only if an echo is heard",
                    "on": "?echo=on: echo cancellation always on, NS/AGC off",
                    "off": "?echo=off: no echo cancellation, NS/AGC off"}[bs.echo],
        "machine": {**before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "load_average_runs": loads},
        "summary": summarize(runs), "runs": runs,
    }
    (out / "bench_browser_bargein.json").write_text(json.dumps(report, indent=1))
    return report


def format_table(report: dict[str, Any]) -> str:
    def f(v: object) -> str:
        return "—" if v is None else str(v)

    lines = ["times in ms after the caller's onset; engine: stream time; wall: when the engine decided, on this "
             "machine's clock from the onset at the page's microphone; <10 % / silent: the bot's audio at the page "
             "(*: below 10 % before the engine decided: a soft passage of its speech; the stop heard is the silence)",
             f"{'run':>3}  {'interruption':<24}{'voice':<22}{'into s':>6}  {'stopped':<8}{'engine':>7}{'wall':>6}"
             f"{'<10 %':>7}{'silent':>7}  outcome"]
    for r in report["runs"]:
        lines.append(f"{r['run']:>3}  {r['phrase']:<24}{r['voice']:<22}{f(r.get('into_answer_s')):>6}  "
                     f"{'yes' if r['stopped'] else 'NO':<8}{f(r.get('engine_ms')):>7}{f(r.get('decided_wall_ms')):>6}"
                     f"{f(r.get('heard_drop_ms')) + ('*' if r.get('drop_before_decision') else ''):>7}"
                     f"{f(r.get('heard_silent_ms')):>7}  {r['outcome']}")
    s = report["summary"]
    m = report["machine"]
    lines.append(f"stopped {s['stopped']}/{s['runs']}; engine p50 {f(s['engine_ms']['p50'])} ms, p90 "
                 f"{f(s['engine_ms']['p90'])} ms; heard below 10 % p50 {f(s['heard_drop_ms']['p50'])} ms, p90 "
                 f"{f(s['heard_drop_ms']['p90'])} ms; silent p50 {f(s['heard_silent_ms']['p50'])} ms, p90 "
                 f"{f(s['heard_silent_ms']['p90'])} ms; stop heard p50 {f(s['heard_stop_ms']['p50'])} ms, p90 "
                 f"{f(s['heard_stop_ms']['p90'])} ms; decided (wall) p50 {f(s['decided_wall_ms']['p50'])} ms")
    lines.append(f"{m['platform']}, {m['cpus']} CPUs, load average {m['load_average']} before, "
                 f"{m['load_average_after']} after; {m['chromium']}; capture: {report['capture']}")
    return "\n".join(lines)
