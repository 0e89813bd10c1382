"""duplexbot bench bargein-browser: the caller's first interruption, in headless Chromium."""
from __future__ import annotations

import argparse
import sys

from . import Subcommands


def cmd_bench_bargein(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from ..bench.browser_bargein import BenchSettings, format_table, run_bench

    bs = BenchSettings(runs=args.runs, out=args.out, echo=args.echo, codec=args.codec, policy=args.policy,
                       tenant=args.tenant, first=args.first, wait_idle=args.wait_idle)
    try:
        report = asyncio.run(run_bench(bs, log=lambda m: print(m, file=sys.stderr, flush=True)))
    except RuntimeError as e:
        print(f"duplexbot: error: {e}", file=sys.stderr)
        return 2
    print(format_table(report))
    print(json.dumps(report, indent=2) if args.json else f"(JSON: {bs.out}/bench_browser_bargein.json)")
    return 0


def register(sub: Subcommands, groups: dict[str, Subcommands]) -> None:
    p = groups["bench"].add_parser(
        "bargein-browser", help="headless Chromium calls (fake microphone) against the real server on 127.0.0.1: "
                                "does the caller's first interruption stop the bot, and how fast it is heard")
    p.add_argument("--runs", type=int, default=10, help="fresh browser calls, one interruption each")
    p.add_argument("--echo", choices=["auto", "on", "off"], default="auto",
                   help="the call page's ?echo=: auto (its default), on (always cancel echo), off")
    p.add_argument("--codec", choices=["", "opus", "PCMU"], default="", help="the page's codec (default: its own)")
    p.add_argument("--policy", choices=["auto", "baseline", "duplex"], default="duplex")
    p.add_argument("--tenant", default="", help="the call page's ?tenant= (default: the bot's default tenant)")
    p.add_argument("--first", type=int, default=0, help="index of the first run's variant (phrase, voice, moment)")
    p.add_argument("--wait-idle", type=float, default=0.0,
                   help="before each run, wait up to this many seconds for the 1-min load average to fall below 2")
    p.add_argument("--out", default="out/bench-browser-bargein")
    p.add_argument("--json", action="store_true", help="also print the JSON report")
    p.set_defaults(func=cmd_bench_bargein)
