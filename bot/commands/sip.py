"""CLI: `duplexbot bench sip` (sipp at rising call rates / concurrency against the SIP bridge)."""
from __future__ import annotations

import argparse

from . import Subcommands


def register(sub: Subcommands, groups: dict[str, Subcommands]) -> None:
    b = groups["bench"].add_parser("sip", help="sipp at rising call rates and concurrency: calls/s set up, "
                                              "sessions and media calls held, where failures begin")
    b.add_argument("--rates", default="10,20,30,50,75,100,150,200", help="offered calls per second")
    b.add_argument("--seconds", type=float, default=5.0, help="how long each rate is offered")
    b.add_argument("--hold-ms", type=int, default=1000, help="call length in the rate phase")
    b.add_argument("--sessions", default="250,500,1000", help="concurrent signalling sessions to hold")
    b.add_argument("--sessions-rate", type=float, default=50.0)
    b.add_argument("--media", default="25,50,100,200", help="concurrent calls to hold with RTP both ways")
    b.add_argument("--media-hold-ms", type=int, default=10000)
    b.add_argument("--target", default=None, help="host:port of a running server (default: in-process bridge)")
    b.add_argument("--keep-going", action="store_true", help="do not stop a phase at its first failing step")
    b.add_argument("--out", default="out/bench-sip.json", help="write the JSON results here")
    b.set_defaults(func=bench_sip)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def bench_sip(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    from pathlib import Path

    from bot.bench.sip import BenchSettings, run, summary, to_json

    logging.getLogger("sip").setLevel(logging.WARNING)
    settings = BenchSettings(rates=_floats(args.rates), seconds=args.seconds, hold_ms=args.hold_ms,
                             sessions=tuple(int(x) for x in _floats(args.sessions)), sessions_rate=args.sessions_rate,
                             media=tuple(int(x) for x in _floats(args.media)), media_hold_ms=args.media_hold_ms,
                             target=args.target, stop_after_failure=not args.keep_going)
    steps = asyncio.run(run(settings))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_json(steps))
    print()
    for k, v in summary(steps).items():
        print(f"{k:40s} {v}")
    print(f"wrote {out}")
    return 0
