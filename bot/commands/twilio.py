"""duplexbot call +1... (an outbound phone call through Twilio) | duplexbot bench twilio."""
from __future__ import annotations

import argparse
import sys

from . import Subcommands


def cmd_call(args: argparse.Namespace) -> int:
    import asyncio

    from ..settings import Settings
    from ..transports.twilio.rest import CallResource, TwilioApiError, TwilioRest
    from ..transports.twilio.webhook import validate_target

    try:
        settings = Settings.from_env().twilio
        to = validate_target(args.number)
        if to.startswith("sip"):
            raise ValueError("outbound calls go to phone numbers (E.164), not SIP URIs")
        from_ = args.from_ or settings.caller_id
        if not from_:
            raise ValueError("no caller ID: pass --from or set TWILIO_CALLER_ID")
        if not settings.public_base_url:
            raise ValueError("DUPLEXBOT_PUBLIC_URL is not set: Twilio needs it to reach /twilio/voice "
                             "when the call answers")
        rest = TwilioRest(settings)
    except ValueError as e:
        print(f"duplexbot: error: {e}", file=sys.stderr)
        return 2

    async def go() -> CallResource:
        try:
            return await rest.create_call(to, from_, settings.voice_url)
        finally:
            await rest.close()

    try:
        call = asyncio.run(go())
    except TwilioApiError as e:
        print(f"duplexbot: error: {e}{' (retryable)' if e.retryable else ''}", file=sys.stderr)
        return 1
    print(f"calling {to} from {from_}: {call.sid} ({call.status}); when it answers Twilio fetches {settings.voice_url}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from ..bench.twilio import BenchSettings, format_table, run_bench

    levels = tuple(int(x) for x in args.levels.split(",") if x.strip())
    bs = BenchSettings(turns=args.turns, latency_calls=args.latency_calls, levels=levels, listen=args.listen,
                       late_budget=args.late_budget, policy=args.policy, out=args.out, port=args.port or 0)
    report = asyncio.run(run_bench(bs, log=lambda m: print(m, file=sys.stderr, flush=True)))
    print(format_table(report))
    print(json.dumps(report, indent=2) if args.json else f"(JSON: {bs.out}/bench_twilio.json)")
    return 0


def register(sub: Subcommands, groups: dict[str, Subcommands]) -> None:
    p = sub.add_parser("call", help="call a phone number through Twilio; the bot talks when it answers")
    p.add_argument("number", help="E.164 number, e.g. +15551234567")
    p.add_argument("--from", dest="from_", default="", help="caller ID (default TWILIO_CALLER_ID)")
    p.set_defaults(func=cmd_call)

    p = groups["bench"].add_parser("twilio", help="scripted callers over Twilio Media Streams on 127.0.0.1: "
                                                  "latency, barge-in, simultaneous calls")
    p.add_argument("--turns", type=int, default=8, help="question/answer turns (each with a barge-in)")
    p.add_argument("--latency-calls", type=int, default=2, help="calls the turns are spread over")
    p.add_argument("--levels", default="1,2,4,8,12,16,24,32", help="simultaneous-call levels to try, in order")
    p.add_argument("--listen", type=float, default=4.0, help="seconds each capacity caller listens to its answer")
    p.add_argument("--late-budget", type=float, default=0.01, help="fraction of late bot frames a level may have")
    p.add_argument("--policy", choices=["baseline", "auto", "duplex"], default="baseline")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--out", default="out/bench-twilio")
    p.add_argument("--json", action="store_true", help="also print the JSON report")
    p.set_defaults(func=cmd_bench)
