"""Runtime files: how a running `duplexbot serve` tells the CLI where its embedded Valkey listens.

Each bot process writes its own file, `<runtime dir>/bots/<pid>.json` holding the server URL, the
pid and the bot's HTTP port, and removes it on stop. Several bots on one machine therefore never
overwrite or delete each other's file. A file whose process is gone (a killed bot) is stale: it
is ignored and removed when read. An explicit `DUPLEXBOT_RUNTIME_FILE` names one file instead.

The CLI picks a bot with `choose()`: the only live one, or the one on `--port` / `DUPLEXBOT_PORT`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .settings import StateSettings

LEGACY_NAME = "redis.json"  # the single shared file of earlier versions, still read


@dataclass(frozen=True)
class BotFile:
    """One running bot, as its runtime file describes it."""
    url: str
    pid: int
    port: int | None
    path: Path

    def label(self) -> str:
        return f"pid {self.pid}" + (f", port {self.port}" if self.port is not None else "") + f" ({self.url})"


class NoBot(Exception):
    """No bot to talk to, or several and no way to tell which: the message says what to do."""


def bots_dir(base: Path) -> Path:
    """The bots' runtime files below `base` (`StateSettings.runtime_dir`)."""
    return base / "bots"


def bot_path(settings: StateSettings, pid: int | None = None) -> Path:
    """Where this process publishes its embedded server."""
    if settings.runtime_file:
        return Path(settings.runtime_file)
    return bots_dir(settings.runtime_dir) / f"{os.getpid() if pid is None else pid}.json"


def write_runtime_file(path: Path, url: str, port: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "port": port}))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def remove_runtime_file(path: Path) -> None:
    """Remove the file if this process wrote it (never another bot's)."""
    try:
        data = json.loads(path.read_text())
        if data.get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # someone else's process: alive
    except (OSError, OverflowError):
        return False
    return True


def read_bot(path: Path, clean: bool = True) -> BotFile | None:
    """The bot a runtime file describes, or None (missing, unreadable, or its process is gone:
    then the stale file is removed when `clean`)."""
    try:
        data = json.loads(path.read_text())
        pid = int(data["pid"])
        url = str(data["url"])
        port = data.get("port")
        port = int(port) if port is not None else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if pid <= 0 or not _alive(pid):
        if clean:
            try:
                path.unlink()
            except OSError:
                pass
        return None
    return BotFile(url, pid, port, path)


def read_runtime_file(path: Path) -> str | None:
    """The URL a running `duplexbot serve` published in `path`, or None."""
    bot = read_bot(path, clean=False)
    return bot.url if bot else None


def live_bots(settings: StateSettings, base: Path | None = None) -> list[BotFile]:
    """Every live bot: the explicit runtime file alone when one is configured, else each file in
    the bots directory (and the legacy shared file), stale ones cleaned."""
    if settings.runtime_file:
        paths = [Path(settings.runtime_file)]
    else:
        base = base or settings.runtime_dir
        d = bots_dir(base)
        paths = sorted(d.glob("*.json")) if d.is_dir() else []
        paths.append(base / LEGACY_NAME)
    found = [b for b in (read_bot(p) for p in paths) if b is not None]
    return sorted(found, key=lambda b: (b.port is None, b.port or 0, b.pid))


def choose(bots: list[BotFile], port: int | None, where: str) -> BotFile:
    """The bot to talk to. Raises NoBot with a message naming the choices."""
    if port is not None:
        for b in bots:
            if b.port == port:
                return b
        running = "; ".join(b.label() for b in bots) or "none"
        raise NoBot(f"no `duplexbot serve` with an embedded store on port {port} (running: {running})")
    if len(bots) == 1:
        return bots[0]
    if not bots:
        raise NoBot(
            "no Redis to talk to: REDIS_URL is not set and no `duplexbot serve` is running here.\n"
            "Without REDIS_URL the bot runs a private embedded Valkey server inside `duplexbot serve`, "
            f"which publishes its address in {where} while it runs.\n"
            "Start `duplexbot serve` first, or set REDIS_URL (e.g. redis://localhost:6379/0 with docker compose).")
    lines = "\n".join(f"  {b.label()}" for b in bots)
    raise NoBot(f"{len(bots)} bots are running here; pick one with --port PORT (or DUPLEXBOT_PORT):\n{lines}")
