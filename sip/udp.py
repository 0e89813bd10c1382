"""The SIP UDP socket, read by the listener itself rather than by an asyncio datagram transport.

Under a flood the kernel drops what the socket's receive buffer cannot hold, so the listener:

* asks for a large receive buffer (`RCVBUF`, 4 MiB; Linux caps it at net.core.rmem_max, and
  SO_RCVBUFFORCE lifts that cap where we may);
* reads in a tight loop when the socket is readable, up to `BATCH` datagrams per wake-up (asyncio's
  datagram transport reads one per event-loop iteration, so every other callback runs between
  two datagrams);
* once a backlog has built up (more than `REORDER_FROM` datagrams in one read), hands the batch to
  the owner in two groups: first what keeps calls and the trunk alive
  (responses, OPTIONS, ACK, BYE and every request with a To tag), then new INVITEs and CANCELs in
  their arrival order (a CANCEL must not overtake its INVITE). Call set-up never delays a probe.

`kernel_drops()` reads the socket's `drops` column from /proc/net/udp (Linux; None elsewhere).
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from typing import Callable

log = logging.getLogger("sip")

RCVBUF = 4 * 1024 * 1024
SNDBUF = 1024 * 1024
BATCH = 256
REORDER_FROM = 8       # datagrams read at once before urgent ones are taken first
MAX_DATAGRAM = 65535
Datagram = tuple[bytes, tuple[str, int]]
_TO_TAG = re.compile(rb"(?im)^(?:to|t)[ \t]*:[^\r\n]*;[ \t]*tag[ \t]*=")
_SETUP = (b"INVITE", b"CANCEL")


def urgent(data: bytes) -> bool:
    """True for what must not wait behind call set-up: responses and every request but a new INVITE
    or a CANCEL (a re-INVITE names its dialog with a To tag)."""
    if data[:4] == b"SIP/":
        return True
    method = data.lstrip(b"\r\n")[:7].split(b" ", 1)[0]
    if method not in _SETUP:
        return True
    if method == b"CANCEL":
        return False
    end = data.find(b"\r\n\r\n")
    return _TO_TAG.search(data, 0, end if end >= 0 else len(data)) is not None


def split_batch(batch: list[Datagram]) -> tuple[list[Datagram], list[Datagram]]:
    """(urgent, the rest) once a backlog has built up; a short batch stays in arrival order."""
    if len(batch) <= REORDER_FROM:
        return batch, []
    first: list[Datagram] = []
    then: list[Datagram] = []
    for item in batch:
        (first if urgent(item[0]) else then).append(item)
    return first, then


class UdpListener:
    def __init__(self, sock: socket.socket, on_batch: Callable[[list[Datagram]], None]) -> None:
        self.sock = sock
        self.on_batch = on_batch
        self.stats = {"received": 0, "batches": 0, "largest_batch": 0, "send_dropped": 0}
        sock.setblocking(False)
        self.rcvbuf = self._grow(socket.SO_RCVBUF, RCVBUF, getattr(socket, "SO_RCVBUFFORCE", None))
        self._grow(socket.SO_SNDBUF, SNDBUF, getattr(socket, "SO_SNDBUFFORCE", None))
        self._loop: asyncio.AbstractEventLoop | None = None

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
        batch: list[Datagram] = []
        recv = self.sock.recvfrom
        for _ in range(BATCH):
            try:
                data, addr = recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:       # ICMP errors surface here on Linux: the next read goes on
                log.debug("udp error: %s", e)
                continue
            batch.append((data, addr[:2]))
        if batch:
            n = len(batch)
            self.stats["received"] += n
            self.stats["batches"] += 1
            self.stats["largest_batch"] = max(self.stats["largest_batch"], n)
            self.on_batch(batch)

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        """Never blocks: a full send buffer drops the datagram (counted); SIP retransmits."""
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.stats["send_dropped"] += 1

    def kernel_drops(self) -> int | None:
        return udp_drops(self.sock)

    def close(self) -> None:
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
