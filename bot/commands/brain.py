"""duplexbot llm-stub (a local OpenAI-compatible server, bot/bench/llm_stub.py) | duplexbot bench brain
(bot/bench/brain.py)."""
from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_llm_stub(args: argparse.Namespace) -> int:
    import asyncio

    from ..bench.llm_stub import StubSettings, serve

    if args.ttft < 0 or args.wps <= 0:
        print("duplexbot: error: --ttft must be >= 0 and --wps > 0", file=sys.stderr)
        return 2
    asyncio.run(serve(StubSettings(ttft=args.ttft, words_per_second=args.wps), args.host, args.port))
    return 0


def cmd_bench_brain(args: argparse.Namespace) -> int:
    import asyncio

    from ..bench.brain import BrainBenchSettings, format_table, run_bench

    try:
        ttfts = tuple(float(x) for x in args.ttft.split(",") if x.strip())
    except ValueError:
        print(f"duplexbot: error: --ttft takes comma-separated seconds, got {args.ttft!r}", file=sys.stderr)
        return 2
    voices = tuple(v.strip() for v in args.voices.split(",") if v.strip())
    if args.n < 1 or args.parallel < 1 or args.wps <= 0 or any(t < 0 for t in ttfts) or not (ttfts or args.offline):
        print("duplexbot: error: --n and --parallel must be at least 1, --wps > 0, --ttft >= 0, and something "
              "to run (--ttft or the offline agent)", file=sys.stderr)
        return 2
    bs = BrainBenchSettings(n=args.n, parallel=args.parallel, ttfts=ttfts, words_per_second=args.wps,
                            offline=args.offline, policy=args.policy, out=args.out, question_set=args.set,
                            dataset=args.dataset, voices=voices, port=args.port or 0)
    try:
        report = asyncio.run(run_bench(bs, log=lambda m: print(m, file=sys.stderr, flush=True)))
    except ValueError as e:
        print(f"duplexbot: error: {e}", file=sys.stderr)
        return 2
    print(format_table(report))
    print(f"(JSON: {bs.out})")
    return 0


def register(sub: Any, groups: dict[str, Any]) -> None:
    p = sub.add_parser("llm-stub", help="a local OpenAI-compatible chat server with a set time to first token "
                                        "and words per second (for trying the bot with a 'model')")
    p.add_argument("--ttft", type=float, default=0.4, help="seconds to the first token")
    p.add_argument("--wps", type=float, default=12.0, help="words per second after the first")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8088, help="0: any free port")
    p.set_defaults(func=cmd_llm_stub)

    p = groups["bench"].add_parser("brain", help="the same caller questions over Twilio Media Streams with the "
                                                 "offline agent and a stub model at several times to first token: "
                                                 "response p50/p90, unanswered turns, speculations")
    p.add_argument("--n", type=int, default=30, help="questions (one call each)")
    p.add_argument("--parallel", type=int, default=4, help="calls at once")
    p.add_argument("--ttft", default="0,0.4,0.8", help="the stub's seconds to first token, one run each")
    p.add_argument("--wps", type=float, default=12.0, help="the stub's words per second")
    p.add_argument("--no-offline", dest="offline", action="store_false", help="skip the offline YAML agent")
    p.add_argument("--policy", choices=["auto", "baseline", "duplex"], default="auto")
    p.add_argument("--out", default="out/bench-brain.json", help="the JSON report (servers' logs beside it)")
    p.add_argument("--set", default="out/brain-set", help="where the generated questions are kept")
    p.add_argument("--dataset", default=None, help="a phone set (duplexbot bench phone-data) instead")
    p.add_argument("--voices", default="espeak,hibari", help="voice families for the generated questions")
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=cmd_bench_brain)
