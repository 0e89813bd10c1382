"""The SIP UDP socket, read by the listener itself rather than by an asyncio datagram transport.

Under a flood the kernel drops what the socket's receive buffer cannot hold, and a probe queued
behind a thousand INVITEs waits for all of them. So the listener:

* asks for a large receive buffer (`RCVBUF`, 4 MiB; Linux caps it at net.core.rmem_max, and
  SO_RCVBUFFORCE lifts that cap where we may);
* empties the socket in a tight loop whenever it is readable (up to `READ_BATCH` datagrams per
  wake-up; a `recvfrom` costs microseconds, parsing a SIP message a few hundred), so the kernel
  buffer never fills;
* hands on at once, in arrival order, what keeps calls and the trunk alive: responses, OPTIONS,
  ACK, BYE and the other in-dialog methods, and INVITEs with a To tag (re-INVITEs);
* queues everything else (new INVITEs, CANCELs, unknown methods, junk) in arrival order (a CANCEL
  never overtakes its INVITE) and works through that queue `WORK_BATCH` datagrams per event-loop
  iteration, so call set-up and malformed floods never hold the loop for long nor delay a probe.
  The queue is bounded (`MAX_QUEUED`, oldest dropped) and what waited longer than `MAX_WAIT` is
  dropped unread (the peer has retransmitted by then); both are counted.

With no backlog (nothing queued and a read of at most `REORDER_FROM` datagrams) everything is
handed on in arrival order. `kernel_drops()` reads the socket's `drops` column from /proc/net/udp
(Linux; None elsewhere).
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections import deque
from typing import Callable

log = logging.getLogger("sip")

RCVBUF = 4 * 1024 * 1024
SNDBUF = 1024 * 1024
READ_BATCH = 1024
WORK_BATCH = 32
REORDER_FROM = 8
MAX_QUEUED = 8192
MAX_WAIT = 4.0         # s
MAX_DATAGRAM = 65535
Datagram = tuple[bytes, tuple[str, int]]
_TO_TAG = re.compile(rb"(?im)^(?:to|t)[ \t]*:[^\r\n]*;[ \t]*tag[ \t]*=")
_URGENT = frozenset((b"OPTIONS", b"ACK", b"BYE", b"INFO", b"NOTIFY", b"UPDATE", b"REFER", b"PRACK"))


def urgent(data: bytes) -> bool:
    """True for what must not wait behind call set-up (see the module docstring)."""
    if data.startswith(b"SIP/2.0 "):
        return True
    method = data[:8].split(b" ", 1)[0]
    if method in _URGENT:
        return True
    if method != b"INVITE":
        return False
    end = data.find(b"\r\n\r\n")
    return _TO_TAG.search(data, 0, end if end >= 0 else len(data)) is not None


class UdpListener:
    def __init__(self, sock: socket.socket, on_batch: Callable[[list[Datagram]], None]) -> None:
        self.sock = sock
        self.on_batch = on_batch
        self.stats = {"received": 0, "reads": 0, "largest_read": 0, "queued": 0, "queue_full": 0, "stale": 0,
                      "send_dropped": 0}
        sock.setblocking(False)
        self.rcvbuf = self._grow(socket.SO_RCVBUF, RCVBUF, getattr(socket, "SO_RCVBUFFORCE", None))
        self._grow(socket.SO_SNDBUF, SNDBUF, getattr(socket, "SO_SNDBUFFORCE", None))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[tuple[float, bytes, tuple[str, int]]] = deque()
        self._working: asyncio.Handle | None = None

    def _grow(self, opt: int, size: int, force: int | None) -> int:
        for o in ((force, opt) if force is not None else (opt,)):
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, o, size)
                break
            except OSError:
                continue
        return self.sock.getsockopt(socket.SOL_SOCKET, opt)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        loop = self._loop
        if loop is None:               # not started, or closed
            return
        batch: list[Datagram] = []
        recv = self.sock.recvfrom
        for _ in range(READ_BATCH):
            try:
                data, addr = recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:       # ICMP errors surface here on Linux: the next read goes on
                log.debug("udp error: %s", e)
                continue
            batch.append((data, addr[:2]))
        if not batch:
            return
        n = len(batch)
        self.stats["received"] += n
        self.stats["reads"] += 1
        self.stats["largest_read"] = max(self.stats["largest_read"], n)
        if not self._queue and n <= REORDER_FROM:
            self.on_batch(batch)       # no backlog: arrival order
            return
        now = loop.time()
        first: list[Datagram] = []
        for data, addr in batch:
            if urgent(data):
                first.append((data, addr))
                continue
            if len(self._queue) >= MAX_QUEUED:
                self._queue.popleft()
                self.stats["queue_full"] += 1
            self._queue.append((now, data, addr))
            self.stats["queued"] += 1
        if first:
            self.on_batch(first)
        if self._queue and self._working is None:
            self._working = loop.call_soon(self._work)

    def _work(self) -> None:
        """One slice of the queue per event-loop iteration (reads and other callbacks run between)."""
        self._working = None
        if self._loop is None:
            return
        stale_before = self._loop.time() - MAX_WAIT
        chunk: list[Datagram] = []
        while self._queue and len(chunk) < WORK_BATCH:
            at, data, addr = self._queue.popleft()
            if at < stale_before:
                self.stats["stale"] += 1
                continue
            chunk.append((data, addr))
        if chunk:
            self.on_batch(chunk)
        if self._queue and self._loop is not None:
            self._working = self._loop.call_soon(self._work)

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        """Never blocks: a full send buffer drops the datagram (counted); SIP retransmits."""
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.stats["send_dropped"] += 1

    def kernel_drops(self) -> int | None:
        return udp_drops(self.sock)

    def close(self) -> None:
        if self._working is not None:
            self._working.cancel()
            self._working = None
        self._queue.clear()
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.sock.fileno())
        self._loop = None
        self.sock.close()


def udp_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped for this socket (a full receive buffer), from /proc/net/udp."""
    try:
        inode = os.fstat(sock.fileno()).st_ino
        with open("/proc/net/udp") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        cols = line.split()
        if len(cols) >= 13 and cols[9] == str(inode):
            return int(cols[-1])
    return None
