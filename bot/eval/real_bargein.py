"""Barge-in on real voices (eval only): the words of bot/eval/real_data.py's set said over the bot.

- `build_bargein_turns`: two-channel `eval turns` samples, a real "stop" (an interruption) or "yes"
  (a backchannel) over the bot's hibari voice, for offline policies;
- `run_bargein` (`duplexbot bench real-bargein DIR`): live Twilio calls in which each word is said
  over the greeting; whether, and how fast, the caller stops hearing the bot.
"""
from __future__ import annotations

import asyncio
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from models.audio import read_wav, write_wav

from .phone_data import FRAME, RATE, SPEECH_DBFS, frame_db, normalise

# ------------------------------------------------------------------ barge-in offline (eval turns format)

BOT_LINES = ("Your order left our warehouse this morning and should reach you by Thursday afternoon.",
             "We are open from nine in the morning until six in the evening, Monday to Saturday.",
             "The garden chair costs forty nine pounds and comes in green, grey and a natural wood finish.",
             "You can return any item within thirty days, as long as you still have the receipt.")


def hibari_bot() -> Callable[[str], np.ndarray]:
    """The bot's own voice as the call simulator speaks it (hibari "heart", unshifted), 16 kHz."""
    from .phone_data import HibariModel

    model = HibariModel()
    return lambda text: model.render(text, 1.0, 1.0, 1.0, 0.0, seed=len(text))


def build_bargein_turns(out: Path, folder: Path, bargein: Sequence[dict[str, Any]],
                        bot_voice: Callable[[str], np.ndarray], rng: np.random.Generator,
                        log: Callable[[str], None] = print) -> int:
    """Two-channel samples for `eval turns` (bot/eval/dataset.py format) from the barge-in words:
    the bot (channel 1) says a sentence; 1.0-2.0 s in, the caller (channel 0) says the real word at
    the caller's level (-20 dBFS RMS; a "yes" backchannel is NOT made quieter), with the bot's voice
    leaking into the caller channel at -35 dB (echo, 40 ms). A "stop" or the start of a real
    sentence ("talk") is an interruption (the bot channel goes quiet 0.8 s after its onset, as a bot
    that stopped would), a "yes" a backchannel (the bot talks on)."""
    out.mkdir(parents=True, exist_ok=True)
    lines = {t: normalise(bot_voice(t)) for t in BOT_LINES}
    n = 0
    for k, it in enumerate(bargein):
        word, _ = read_wav(folder / it["wav"])
        w = normalise(word[0])
        bot = lines[BOT_LINES[k % len(BOT_LINES)]]
        b0 = int(0.5 * RATE)
        onset = b0 + int(rng.uniform(1.0, 2.0) * RATE)
        total = max(b0 + bot.size, onset + w.size) + int(2.0 * RATE)
        x = np.zeros((2, total), np.float32)
        x[1, b0:b0 + bot.size] = bot
        stops = it.get("expect", "stop" if it["word"] == "stop" else "continue") == "stop"
        if stops:
            x[1, onset + int(0.8 * RATE):] = 0.0
        d = int(0.04 * RATE)
        x[0, d:] += x[1, :-d] * np.float32(10 ** (-35 / 20))
        x[0, onset:onset + w.size] += w
        db = frame_db(w)
        on = np.flatnonzero(db > SPEECH_DBFS)
        t_on = (onset + (on[0] * FRAME if on.size else 0)) / RATE
        labels = {"eot": [], "hold": [], "interruption": [round(t_on, 3)] if stops else [],
                  "backchannel": [round(t_on, 3)] if not stops else []}
        write_wav(out / f"{it['id']}.wav", x, RATE)
        (out / f"{it['id']}.json").write_text(json.dumps(labels))
        n += 1
        log(f"{it['id']:<18} {it['speaker']:<28} {it['word']} at {t_on:.2f} s over the bot")
    return n


# ------------------------------------------------------------------ barge-in over the greeting (real words)

@dataclass(frozen=True)
class BargeSettings:
    parallel: int = 4
    policy: str = "auto"
    out: str = "out/bench-real-bargein"
    limit: int | None = None
    after: float = 0.8  # the word starts this long after the caller first hears the greeting
    window: float = 2.0  # a stop later than this after the word's onset does not count
    controls: int = 2  # calls without a word: how long the greeting plays when nobody talks
    ramp: float = 6.0  # the pool's first calls ring in spread over this
    port: int = 0


@dataclass(frozen=True)
class BargeOutcome:
    stopped: bool  # the caller stopped hearing the bot (a clear, or the greeting cut short) within the window
    stop_latency: float | None  # word onset -> bot audio stops for the caller (s)
    greeting_s: float  # first heard greeting audio -> end of the burst playing at the onset


def barge_outcome(onset: float, g0: float, clears: Sequence[float], burst_end: float, natural_s: float,
                  window: float, margin: float = 0.3) -> BargeOutcome:
    """Pure scoring. `clears`: times the server cleared the caller's playout; `burst_end`: when the
    bot audio that was playing at the word's onset stopped for the caller; `natural_s`: how long the
    greeting plays without an interruption (from the control calls)."""
    clear = min((c for c in clears if c >= onset), default=None)
    if clear is not None and clear - onset <= window:
        return BargeOutcome(True, clear - onset, clear - g0)
    cut_short = burst_end - g0 < natural_s - margin and burst_end - onset <= window
    return BargeOutcome(cut_short, burst_end - onset if cut_short else None, burst_end - g0)


def _burst_end(frames: Sequence[tuple[float, float]], clears: Sequence[float], onset: float, threshold: float,
               gap: float = 0.3) -> float:
    """End of the bot audio playing at (or starting just after) `onset`: the first silence of more
    than `gap` seconds after it, or a clear."""
    end = onset
    for t, db in sorted(frames):
        if t + 0.02 <= end or db < threshold:
            continue
        if t - end > gap:
            break
        end = t + 0.02
    cut = min((c for c in clears if c > onset), default=None)
    return min(end, cut) if cut is not None else end


async def barge_call(http: Any, srv: Any, pcm8k: np.ndarray | None, bs: BargeSettings) -> dict[str, Any]:
    """One call: wait for the greeting, then (unless a control) say the word `bs.after` s into it.
    -> raw times (seconds, the caller's clock) for `barge_outcome`."""
    from ..bench.twilio_peer import TwilioPeer
    from .phone import HeardLevels

    p = TwilioPeer(srv.base, srv.auth, account_sid=srv.account)
    heard = HeardLevels(p, -40.0)
    rec: dict[str, Any] = {"error": "", "refused": False}
    try:
        r = await p.webhook(http)
        if not p.stream_url:
            if "<Reject" in p.twiml:
                return {**rec, "refused": True, "error": "refused"}
            raise RuntimeError(f"voice webhook answered {r.status}: {p.twiml}")
        await p.open(http)
        if not await p.wait_for(lambda: heard.first_audible(0.0) is not None, 20):
            raise RuntimeError("no greeting")
        g0 = heard.first_audible(0.0)
        assert g0 is not None
        await p.wait_for(lambda: p.clock() - g0 >= bs.after, bs.after + 5)
        onset = p.clock()
        if pcm8k is not None:
            u = p.say(pcm8k)
            await p.wait_for(lambda: u.voiced_from is not None, 5)
            if u.voiced_from is None:
                raise RuntimeError("the word never went out")
            onset = u.voiced_from
        await p.wait_for(lambda: (p.clock() - onset > bs.window + 0.5
                                  and (heard.last_audible_end() or 0.0) < p.clock() - 0.6), 20)
        heard.update()
        rec.update(g0=g0, onset=onset, clears=list(p.clears),
                   burst_end=_burst_end(heard.frames, p.clears, onset, -40.0))
    except Exception as e:  # noqa: BLE001 - a failed call is a result
        rec["error"] = f"{type(e).__name__}: {e}"
    finally:
        await p.hang_up()
    return rec


async def run_bargein(folder: str | Path, bs: BargeSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    import os

    import aiohttp

    from ..audio.resample import resample as resample_int
    from ..bench.twilio import ServerProcess
    from .phone import _code_state, _free_port

    folder = Path(folder)
    try:
        d = json.loads((folder / "bargein.json").read_text())
        items = list(d["samples"])[:bs.limit]
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"{folder / 'bargein.json'}: not a barge-in set ({e!r}); make one with `bench real-data`")
    if not items:
        raise ValueError(f"{folder / 'bargein.json'}: no samples")
    pcm = {}
    for it in items:
        x, sr = read_wav(folder / it["wav"])
        pcm[it["id"]] = resample_int((np.clip(x[0], -1, 1) * 32767).astype(np.int16), sr, 8000)
    out = Path(bs.out)
    out.mkdir(parents=True, exist_ok=True)
    srv = ServerProcess(bs.port or _free_port(), bs.policy, out / "server.log")
    rows: list[dict[str, Any]] = []
    load0 = os.getloadavg()[0]
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await srv.ready(http)
            controls = [await barge_call(http, srv, None, bs) for _ in range(bs.controls)]
            natural = [c["burst_end"] - c["g0"] for c in controls if not c["error"]]
            if not natural:
                raise RuntimeError(f"control calls failed: {[c['error'] for c in controls]}")
            natural_s = float(np.median(natural))
            log(f"greeting plays {natural_s:.2f} s without an interruption ({len(natural)} control calls)")
            queue = list(items)

            async def caller(k: int) -> None:
                await asyncio.sleep(k * bs.ramp / max(bs.parallel, 1))
                while queue:
                    it = queue.pop(0)
                    t_end = time.monotonic() + 30
                    while True:
                        raw = await barge_call(http, srv, pcm[it["id"]], bs)
                        if not raw["refused"] or time.monotonic() > t_end:
                            break
                        await asyncio.sleep(1.0)
                    row = {k2: it[k2] for k2 in ("id", "word", "expect", "speaker")}
                    row["error"] = raw["error"]
                    if not raw["error"]:
                        o = barge_outcome(raw["onset"], raw["g0"], raw["clears"], raw["burst_end"], natural_s,
                                          bs.window)
                        row.update(stopped=o.stopped, stop_latency=None if o.stop_latency is None
                                   else round(o.stop_latency, 3), greeting_s=round(o.greeting_s, 3))
                    rows.append(row)
                    log(f"  {it['id']:<16} {it['speaker']:<28} " + (f"error {raw['error']}" if raw["error"] else
                        ("stopped" if row["stopped"] else "kept talking")
                        + (f" after {row['stop_latency'] * 1000:.0f} ms" if row.get("stop_latency") is not None
                           else "")))

            await asyncio.gather(*(caller(k) for k in range(min(bs.parallel, len(items)))))
    finally:
        srv.stop()
    summary = summarise_bargein(rows)
    report = {"bench": "real-bargein", "dataset": str(folder), "policy": bs.policy, "parallel": bs.parallel,
              "settings": {k: getattr(bs, k) for k in BargeSettings.__dataclass_fields__},
              "natural_greeting_s": round(natural_s, 3), "summary": summary, "code": _code_state(),
              "machine": {"cpu_count": os.cpu_count(), "machine": platform.machine(), "load_avg_1m": load0,
                          "load_avg_1m_end": os.getloadavg()[0]},
              "samples": sorted(rows, key=lambda r: r["id"])}
    (out / "results.json").write_text(json.dumps(report, indent=2))
    return report


def summarise_bargein(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for word in sorted({r["word"] for r in rows}):
        rs = [r for r in rows if r["word"] == word and not r["error"]]
        lat = [r["stop_latency"] for r in rs if r["stopped"] and r["stop_latency"] is not None]
        out[word] = {"n": len(rs), "errors": sum(1 for r in rows if r["word"] == word and r["error"]),
                     "expect": rs[0]["expect"] if rs else None, "stopped": sum(r["stopped"] for r in rs),
                     "stop_rate": round(sum(r["stopped"] for r in rs) / len(rs), 3) if rs else None,
                     "stop_ms_p50": round(float(np.percentile(lat, 50)) * 1000) if lat else None,
                     "stop_ms_p90": round(float(np.percentile(lat, 90)) * 1000) if lat else None}
    return out


def format_bargein(report: dict[str, Any]) -> str:
    lines = [f"Barge-in over the greeting: {report['dataset']} (policy {report['policy']}, "
             f"{report['parallel']} calls at once; greeting {report['natural_greeting_s']} s uninterrupted)",
             f"{'word':<8}{'expect':<10}{'n':>4}{'stopped':>9}{'rate':>7}{'stop p50 ms':>13}{'stop p90 ms':>13}"
             f"{'err':>5}"]
    for w, s in report["summary"].items():
        lines.append(f"{w:<8}{s['expect']!s:<10}{s['n']:>4}{s['stopped']:>9}{s['stop_rate']!s:>7}"
                     f"{s['stop_ms_p50']!s:>13}{s['stop_ms_p90']!s:>13}{s['errors']:>5}")
    lines.append("stop: the server cleared the caller's playout, or the greeting ended > 0.3 s before it does "
                 f"uninterrupted, within {report['settings']['window']} s of the word's onset; latency from the "
                 "onset to when the caller stops hearing the bot")
    return "\n".join(lines)

