"""duplexbot bench real-data --out DIR | duplexbot bench real-bargein DIR (bot/eval/real_data.py): a phone
set of real recorded speech (eval only) and barge-in with real words over the bot's greeting."""
from __future__ import annotations

import argparse
import sys

from . import Subcommands


def cmd_real_data(args: argparse.Namespace) -> int:
    from ..eval.real_data import main

    return main(args.args)


def cmd_real_bargein(args: argparse.Namespace) -> int:
    import asyncio

    from ..eval.real_bargein import BargeSettings, format_bargein, run_bargein

    if args.parallel < 1 or (args.limit is not None and args.limit < 1):
        print("duplexbot: error: --parallel and --limit must be at least 1", file=sys.stderr)
        return 2
    bs = BargeSettings(parallel=args.parallel, policy=args.policy, out=args.out, limit=args.limit,
                       after=args.after, port=args.port or 0)
    try:
        report = asyncio.run(run_bargein(args.dataset, bs, log=lambda m: print(m, file=sys.stderr, flush=True)))
    except ValueError as e:
        print(f"duplexbot: error: {e}", file=sys.stderr)
        return 2
    print(format_bargein(report))
    print(f"(JSON: {bs.out}/results.json)")
    return 0


def register(sub: Subcommands, groups: dict[str, Subcommands]) -> None:
    # arguments parsed by bot.eval.real_data itself, so the CLI does not import numpy to build its parser
    p = groups["bench"].add_parser("real-data", help="make a phone-bench set of REAL recorded speech from public "
                                                     "sources on this machine (eval only; python -m "
                                                     "bot.eval.real_data --help)",
                                   add_help=False, prefix_chars="+")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_real_data)

    p = groups["bench"].add_parser("real-bargein", help="real 'stop' / 'yes' words said over the greeting of Twilio "
                                                        "calls into a server on 127.0.0.1: stops and stop latency")
    p.add_argument("dataset", help="folder made by `duplexbot bench real-data` (reads bargein.json)")
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument("--policy", choices=["auto", "baseline", "duplex"], default="auto")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--after", type=float, default=0.8, help="seconds into the greeting the word starts")
    p.add_argument("--out", default="out/bench-real-bargein")
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=cmd_real_bargein)
