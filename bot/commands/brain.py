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


def register(sub: Any, groups: dict[str, Any]) -> None:
    p = sub.add_parser("llm-stub", help="a local OpenAI-compatible chat server with a set time to first token "
                                        "and words per second (for trying the bot with a 'model')")
    p.add_argument("--ttft", type=float, default=0.4, help="seconds to the first token")
    p.add_argument("--wps", type=float, default=12.0, help="words per second after the first")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8088, help="0: any free port")
    p.set_defaults(func=cmd_llm_stub)
