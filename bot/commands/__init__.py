"""CLI subcommand modules, discovered by bot.cli (each defines register(sub, groups))."""
