"""`duplexbot` command line. Subcommands live in `bot/commands/*.py`, each with
`register(sub, groups)`; `groups["bench"]` and `groups["eval"]` hold `duplexbot bench ...` and
`duplexbot eval ...`. Modules import heavy dependencies inside their handlers."""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from . import commands
from .commands import Subcommands


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
