"""One SIP-over-TCP connection (RFC 3261 18.3): frames the byte stream into messages for the owner
and closes the connection on a framing error (nothing after it can be trusted)."""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Callable

from .message import SipParseError, frame_stream

log = logging.getLogger("sip")
Peer = tuple[str, int]


class TcpConnection(asyncio.Protocol):
    def __init__(self, connections: dict[Peer, "TcpConnection"], on_message: Callable[[bytes, Peer, str], None],
                 stats: Counter[str]) -> None:
        """`connections` is the owner's table of open connections by peer (kept up to date here);
        `on_message(data, peer, "tcp")` gets each framed message."""
        self.connections = connections
        self.on_message = on_message
        self.stats = stats
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.peer: Peer = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):
            raise TypeError(f"SIP over TCP needs a stream transport, got {type(transport).__name__}")
        self.transport = transport
        self.peer = transport.get_extra_info("peername")[:2]
        self.connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            try:
                msg, self.buffer = frame_stream(self.buffer)
            except SipParseError as e:
                self.stats["tcp_framing_error"] += 1
                log.info("closing TCP connection from %s: %s", self.peer, e)
                self.close()
                return
            if msg is None:
                return
            self.on_message(msg, self.peer, "tcp")

    def send(self, data: bytes) -> None:
        if self.transport is None:
            raise ConnectionError(f"TCP connection to {self.peer} is not open")
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connections.get(self.peer) is self:
            del self.connections[self.peer]
