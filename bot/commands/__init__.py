"""CLI subcommand modules, discovered by bot.cli (each defines register(sub, groups))."""
from __future__ import annotations

import argparse
from typing import TypeAlias

# what `register(sub, groups)` adds its parsers to: `sub` (top level) and each of `groups`
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

__all__ = ["Subcommands"]
