"""`duplexbot` command line. Subcommands live in `bot/commands/*.py`, each with
`register(sub, groups)`; `groups["bench"]` and `groups["eval"]` hold `duplexbot bench ...` and
`duplexbot eval ...`. Modules import heavy dependencies inside their handlers."""
from __future__ import annotations

import os

# numpy's OpenBLAS starts a worker thread per core, and each spins between the small matrix products
# the engine asks for. In a server whose own threads (event loop, inference, ASR, TTS) already fill
# the cores, that spinning cost a quarter of a core at 20 calls and delayed every call's transcript
# (bench phone: CPU per call-chunk 2.72 -> 2.50 ms, words 336 -> 259 ms). One BLAS thread: products
# run in the thread that asks. Set before anything imports numpy; an operator's own value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
import pkgutil  # noqa: E402
import sys  # noqa: E402

from . import commands  # noqa: E402
from .commands import Subcommands  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="duplexbot", description="Full-duplex telephony voice bot")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, Subcommands] = {}
    for name, text in (("bench", "benchmarks: print a table and write JSON"), ("eval", "offline evaluations")):
        p = sub.add_parser(name, help=text)
        groups[name] = p.add_subparsers(dest="subcommand", required=True, metavar="WHAT")
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub, groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
