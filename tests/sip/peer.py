"""A tiny blocking SIP peer for tests: raw UDP/TCP sockets on 127.0.0.1 and message builders."""
from __future__ import annotations

import itertools
import socket
import time
import uuid

from sip.message import Response, SipParseError, frame_stream, parse_message

_n = itertools.count(1)

SDP = ("v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
       "a=sendrecv\r\n")


def invite(port: int, local: tuple[str, int], transport: str = "UDP", call_id: str | None = None,
           rtp_port: int = 40000, extra: str = "") -> tuple[bytes, dict]:
    n = next(_n)
    d = dict(call_id=call_id or f"t{uuid.uuid4().hex[:12]}@127.0.0.1", tag=f"ft{n}",
             branch=f"z9hG4bKt{uuid.uuid4().hex[:10]}",
             local=local, port=port, transport=transport, cseq=1)
    body = SDP.format(port=rtp_port)
    msg = (f"INVITE sip:bot@127.0.0.1:{port} SIP/2.0\r\n"
           f"Via: SIP/2.0/{transport} {local[0]}:{local[1]};branch={d['branch']};rport\r\n"
           f"Max-Forwards: 70\r\nFrom: <sip:tester@127.0.0.1>;tag={d['tag']}\r\nTo: <sip:bot@127.0.0.1>\r\n"
           f"Call-ID: {d['call_id']}\r\nCSeq: 1 INVITE\r\nContact: <sip:tester@{local[0]}:{local[1]}>\r\n"
           f"{extra}Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}")
    return msg.encode(), d


def in_dialog(method: str, d: dict, to_tag: str, cseq: int, new_branch: bool = True) -> bytes:
    branch = f"z9hG4bKt{uuid.uuid4().hex[:10]}" if new_branch else d["branch"]
    return (f"{method} sip:bot@127.0.0.1:{d['port']} SIP/2.0\r\n"
            f"Via: SIP/2.0/{d['transport']} {d['local'][0]}:{d['local'][1]};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:tester@127.0.0.1>;tag={d['tag']}\r\n"
            f"To: <sip:bot@127.0.0.1>;tag={to_tag}\r\nCall-ID: {d['call_id']}\r\nCSeq: {cseq} {method}\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


def options(port: int, local: tuple[str, int], transport: str = "UDP") -> tuple[bytes, str]:
    cid = f"o{uuid.uuid4().hex[:12]}"
    return (f"OPTIONS sip:bot@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} {local[0]}:{local[1]};branch=z9hG4bKo{uuid.uuid4().hex[:10]}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:tester@127.0.0.1>;tag=o1\r\nTo: <sip:bot@127.0.0.1>\r\n"
            f"Call-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(), cid


class Peer:
    """One socket towards the server; `expect()` returns the next message matching a predicate."""

    def __init__(self, server_port: int, transport: str = "udp"):
        self.transport = transport
        self.server = ("127.0.0.1", server_port)
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
        else:
            self.sock = socket.create_connection(self.server, timeout=5)
        self.local = self.sock.getsockname()[:2]
        self.buffer = b""
        self.backlog: list = []

    def send(self, data: bytes) -> None:
        if self.transport == "udp":
            self.sock.sendto(data, self.server)
        else:
            self.sock.sendall(data)

    def _read(self, deadline: float):
        while True:
            if self.transport == "tcp":
                msg, self.buffer = frame_stream(self.buffer)
                if msg is not None:
                    return parse_message(msg, stream=True)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535) if self.transport == "tcp" else self.sock.recvfrom(65535)[0]
            except (socket.timeout, ConnectionError):
                return None
            if self.transport == "tcp":
                if not data:
                    return None
                self.buffer += data
                continue
            try:
                return parse_message(data)
            except SipParseError:
                continue

    def expect(self, pred, timeout: float = 5.0):
        for i, m in enumerate(self.backlog):
            if pred(m):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m is None:
                return None
            if pred(m):
                return m
            self.backlog.append(m)

    def final(self, call_id: str, method: str = "INVITE", timeout: float = 5.0) -> Response | None:
        return self.expect(lambda m: isinstance(m, Response) and m.call_id == call_id and m.status >= 200
                           and m.cseq[1] == method, timeout)

    def close(self) -> None:
        self.sock.close()


def to_tag(resp: Response) -> str:
    from sip.message import parse_name_addr
    return parse_name_addr(resp.headers.get("To")).tag


def normal_call(port: int, transport: str = "udp") -> int:
    """INVITE, ACK, BYE; returns the final status of the INVITE."""
    p = Peer(port, transport)
    try:
        data, d = invite(port, p.local, transport.upper())
        p.send(data)
        resp = p.final(d["call_id"])
        if resp is None:
            return 0
        if resp.status == 200:
            tag = to_tag(resp)
            p.send(in_dialog("ACK", d, tag, 1))
            p.send(in_dialog("BYE", d, tag, 2))
            bye = p.final(d["call_id"], "BYE")
            assert bye is not None and bye.status == 200
        return resp.status
    finally:
        p.close()
