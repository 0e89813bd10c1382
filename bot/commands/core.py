"""duplexbot serve | simulate | bench turns."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import Subcommands

if TYPE_CHECKING:
    from ..settings import Settings

BENCH_QUESTIONS = [
    "What are your opening hours on Saturday?", "Where is the store?", "How long does delivery take?",
    "Can I return a broken kettle?", "How much does the garden chair cost?", "Are you open on Sunday?",
    "Do you ship to my house?", "Can I get my money back?", "Is there a discount this week?",
    "What time do you close today?", "How do I track my parcel?", "Where can I find you?",
    "I want to exchange a jumper.", "When will my order arrive?", "What is the price of the lamp?",
    "Are you open in the evening?", "Can I change my flight booking?", "Is delivery free?",
    "What is your address?", "Do you have any offers?",
]


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings with the options this subcommand has (--port, --policy, --no-state)."""
    from ..settings import Settings

    s = Settings.from_env()
    if getattr(args, "port", None) is not None:
        s = replace(s, http=replace(s.http, port=args.port))
    if getattr(args, "policy", None):
        s = replace(s, policy_name=args.policy)
    if getattr(args, "no_state", False):
        s = replace(s, state_enabled=False)
    return s


def _error(msg: str) -> int:
    print(f"duplexbot: error: {msg}", file=sys.stderr)
    return 2


def cmd_serve(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..server import serve

    try:
        settings = _settings(args)
    except ConfigError as e:
        return _error(str(e))
    asyncio.run(serve(settings))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from ..audio.wav import AudioFileError
    from ..config import ConfigError
    from ..sim.caller import run_simulation
    from ..sim.script import ScriptError, load_script

    try:
        settings = replace(_settings(args), state_enabled=args.redis)
        script = load_script(args.script)
        result = asyncio.run(run_simulation(settings, script, args.out, fast=args.fast))
    except (ScriptError, AudioFileError, ConfigError, ValueError) as e:
        return _error(str(e))
    m = result.metrics
    print(f"call {m['call_id']} ({m['mode']}, policy {m['policy']}): {m['seconds']} s -> {args.out}")
    for i, t in enumerate(m["turns"], 1):
        lat = "no answer" if t["latency"] is None else f"{t['latency'] * 1000:.0f} ms"
        print(f"  turn {i}: {lat:>10}  {t['caller_text']}")
    for b in m["barge_ins"]:
        sl = "never stopped" if b["stop_latency"] is None else f"stopped in {b['stop_latency'] * 1000:.0f} ms"
        print(f"  barge-in: {sl}  ({b['caller_text']})")
    print(f"  false barge-ins: {m['false_barge_ins']}, missed barge-ins: {m['missed_barge_ins']}")
    return 0


def bench_script(turns: int) -> dict[str, Any]:
    steps: list[dict[str, object]] = [{"wait_for_bot_speech": 0.3}, {"wait_for_silence": 0.5}]
    for i in range(turns):
        steps += [{"say": BENCH_QUESTIONS[i % len(BENCH_QUESTIONS)]}, {"wait_for_bot_speech": 0.3},
                  {"wait_for_silence": 0.5}]
    return {"name": f"bench-{turns}-turns", "steps": steps + [{"hangup": True}]}


def cmd_bench_turns(args: argparse.Namespace) -> int:
    import numpy as np

    from ..sim.caller import run_simulation
    from ..sim.script import parse_script

    settings = replace(_settings(args), state_enabled=False)
    script = parse_script(bench_script(args.turns))
    out = Path(args.out)
    result = asyncio.run(run_simulation(settings, script, out / "call", fast=args.fast))
    m = result.metrics
    lat = [t["latency"] for t in m["turns"] if t["latency"] is not None]
    cw = [t["latency_content_word"] for t in m["turns"] if t["latency_content_word"] is not None]
    eot = [e for e in result.events if e.type == "end_of_turn"]
    report = {
        "bench": "turns", "mode": m["mode"], "policy": m["policy"], "turns": args.turns, "answered": len(lat),
        "response_latency_ms": {q: round(float(np.percentile(lat, p)) * 1000, 1) for q, p in
                                (("p10", 10), ("p50", 50), ("p90", 90), ("max", 100))} if lat else {},
        "content_word_latency_ms": {q: round(float(np.percentile(cw, p)) * 1000, 1) for q, p in
                                    (("p50", 50), ("p90", 90))} if cw else {},
        "end_of_turn_decisions": len(eot),
        "machine": _machine(),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_turns.json").write_text(json.dumps(report, indent=2))
    r = report["response_latency_ms"]
    print(f"{'policy':<12}{'mode':<10}{'turns':>6}{'p10 ms':>9}{'p50 ms':>9}{'p90 ms':>9}{'max ms':>9}")
    print(f"{m['policy']:<12}{m['mode']:<10}{len(lat):>6}{r.get('p10', 0):>9}{r.get('p50', 0):>9}"
          f"{r.get('p90', 0):>9}{r.get('max', 0):>9}")
    print(f"(end of caller speech -> first bot audio at the caller; JSON: {out / 'bench_turns.json'})")
    return 0


def _machine() -> dict[str, object]:
    import os
    import platform

    return {"cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine()}


def register(sub: Subcommands, groups: dict[str, Subcommands]) -> None:
    p = sub.add_parser("serve", help="run the bot: HTTP on :8080 (/healthz, /metrics, transports)")
    p.add_argument("--port", type=int, default=None, help="HTTP port (default 8080 or DUPLEXBOT_PORT)")
    p.add_argument("--policy", choices=["auto", "baseline", "duplex"], default=None)
    p.add_argument("--no-state", action="store_true", help="run without Redis call state")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("simulate", help="drive a scripted call in-process; writes call.wav, events.jsonl, metrics.json")
    p.add_argument("--script", required=True, help="caller script (JSON)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--fast", action="store_true", help="as fast as possible (same decisions, compute counts as 0)")
    p.add_argument("--policy", choices=["auto", "baseline", "duplex"], default=None)
    p.add_argument("--redis", action="store_true", help="also write call state and events to Redis")
    p.set_defaults(func=cmd_simulate)

    p = groups["bench"].add_parser("turns", help="response latency over N scripted turns (real time)")
    p.add_argument("--turns", type=int, default=20)
    p.add_argument("--out", default="out/bench-turns")
    p.add_argument("--fast", action="store_true")
    p.add_argument("--policy", choices=["auto", "baseline", "duplex"], default=None)
    p.set_defaults(func=cmd_bench_turns)
