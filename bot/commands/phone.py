"""duplexbot bench phone DATASET | duplexbot bench phone-data --out DIR (bot/eval/phone.py, phone_data.py)."""
from __future__ import annotations

import argparse
import sys

from . import Subcommands


def cmd_bench_phone(args: argparse.Namespace) -> int:
    import asyncio

    from ..eval.phone import PhoneBenchSettings, format_table, run_bench

    if args.parallel < 1 or (args.limit is not None and args.limit < 1):
        print("duplexbot: error: --parallel and --limit must be at least 1", file=sys.stderr)
        return 2
    bs = PhoneBenchSettings(parallel=args.parallel, policy=args.policy, out=args.out, limit=args.limit,
                            port=args.port or 0, mixed=args.mixed, repeat=max(1, args.repeat),
                            expect_digits=args.expect_digits, pstn_band=args.pstn_band,
                            end_of_turn=args.end_of_turn)
    try:
        report = asyncio.run(run_bench(args.dataset, bs, log=lambda m: print(m, file=sys.stderr, flush=True)))
    except ValueError as e:
        print(f"duplexbot: error: {e}", file=sys.stderr)
        return 2
    print(format_table(report))
    print(f"(JSON: {bs.out}/results.json)")
    return 0


def cmd_phone_data(args: argparse.Namespace) -> int:
    from ..eval.phone_data import main

    return main(args.args)


def register(sub: Subcommands, groups: dict[str, Subcommands]) -> None:
    p = groups["bench"].add_parser("phone", help="labelled caller turns as Twilio calls into a server on 127.0.0.1: "
                                                 "response latency, take-overs in pauses, CPU per call")
    p.add_argument("dataset", help="folder with manifest.json (make one with `duplexbot bench phone-data`)")
    p.add_argument("--parallel", type=int, default=4, help="calls at once (a pool working through the samples)")
    p.add_argument("--policy", choices=["auto", "baseline", "duplex"], default="auto")
    p.add_argument("--limit", type=int, default=None, help="only the first K samples")
    p.add_argument("--mixed", action="store_true", help="one pool over every kind, so --parallel calls are up at once "
                                                        "(default: one pool per kind)")
    p.add_argument("--repeat", type=int, default=1, help="call each sample this many times")
    p.add_argument("--expect-digits", action="store_true",
                   help="a sample that reads out a number is called at a voice URL asking for that many digits "
                        "(?expect_digits=N: an IVR step that collects a number), as a developer who knows what "
                        "the bot asked for would")
    p.add_argument("--pstn-band", action="store_true",
                   help="band-pass the caller's audio to 300-3400 Hz before mu-law, as a narrowband PSTN leg does")
    p.add_argument("--end-of-turn", choices=["fast", "balanced", "accurate"], default="balanced",
                   help="the server's latency-versus-accuracy mode (DUPLEXBOT_END_OF_TURN)")
    p.add_argument("--out", default="out/bench-phone", help="folder for results.json and server.log")
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=cmd_bench_phone)

    # arguments parsed by bot.eval.phone_data itself (as `duplexbot model data` does), so the CLI does not
    # import numpy to build its parser
    p = groups["bench"].add_parser("phone-data", help="make a phone-bench set in voices held out from training "
                                                      "(python -m bot.eval.phone_data --help)",
                                   add_help=False, prefix_chars="+")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_phone_data)
