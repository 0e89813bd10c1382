"""A SIP flood for tests/sip/test_flood.py, run as its own process (its own CPU and event loop, so the
server under test is measured, not the sender): `python -m tests.sip.flood_sender --port P ...`
prints one JSON report on stdout.

Every 1/rate s one case goes out from the flood socket: a malformed message (the RFC 4475 torture
set when given, and variants made here), an odd-but-valid INVITE followed at once by its CANCEL, or
an INVITE that is held (ACK, BYE `hold` s later). Like a real UAC the sender ACKs every final answer
to an INVITE and hangs up (BYE) a 200 that beat its CANCEL. An OPTIONS probe goes out from a second
socket every `probe_every` s; its latency is what the report is about."""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import time
import uuid
from collections import Counter
from pathlib import Path

from sip.message import Response, SipParseError, parse_message, parse_name_addr

SDP = ("v=0\r\no=flood 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio {rtp} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")


def invite(port: int, local: tuple[str, int], call_id: str, branch: str, style: int = 0) -> bytes:
    """A valid INVITE; `style` picks an odd-but-valid spelling (compact names, folding, case, spaces)."""
    body = SDP.format(rtp=40000 + 2 * (hash(call_id) % 5000))
    via = f"SIP/2.0/UDP {local[0]}:{local[1]};branch={branch};rport"
    heads = [("Via", via), ("Max-Forwards", "70"), ("From", f"<sip:flood@127.0.0.1>;tag=f{branch[-6:]}"),
             ("To", "<sip:bot@127.0.0.1>"), ("Call-ID", call_id), ("CSeq", "1 INVITE"),
             ("Contact", f"<sip:flood@{local[0]}:{local[1]}>"), ("Content-Type", "application/sdp")]
    if style == 1:
        short = {"Via": "v", "From": "f", "To": "t", "Call-ID": "i", "Contact": "m", "Content-Type": "c"}
        heads = [(short.get(n, n), v) for n, v in heads]
    elif style == 2:
        heads = [(n.upper() if n != "Call-ID" else "call-id", v) for n, v in heads]
    elif style == 3:
        heads = [(n, v.replace(";", " ;\r\n  ", 1) if n == "From" else v) for n, v in heads]   # folded line
    elif style == 4:
        heads += [("X-Odd", "x" * 300), ("Subject", "  spaces   around  "), ("Supported", "timer, replaces")]
    text = "".join(f"{n}:{'   ' if style == 2 else ' '}{v}\r\n" for n, v in heads)
    return (f"INVITE sip:bot@127.0.0.1:{port} SIP/2.0\r\n{text}Content-Length: {len(body)}\r\n\r\n{body}").encode()


def cancel(inv: bytes) -> bytes:
    """The CANCEL for an INVITE we built (same Via, From, To, Call-ID; CSeq n CANCEL)."""
    head = inv.split(b"\r\n\r\n", 1)[0].decode()
    lines = head.split("\r\n")
    uri = lines[0].split(" ")[1]
    unfolded = head.replace("\r\n  ", " ").split("\r\n")[1:]
    keep = [ln for ln in unfolded if ln.split(":", 1)[0].strip().lower() in
            ("via", "v", "from", "f", "to", "t", "call-id", "i", "max-forwards")]
    head = f"CANCEL {uri} SIP/2.0\r\n" + "\r\n".join(keep)
    return (head + "\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n").encode()


def malformed(rng: random.Random, port: int, local: tuple[str, int]) -> bytes:
    """One of our own malformed variants of a valid INVITE."""
    cid = f"m{uuid.uuid4().hex[:12]}"
    good = invite(port, local, cid, f"z9hG4bKm{uuid.uuid4().hex[:10]}")
    kind = rng.randrange(14)
    if kind == 0:
        return good[:rng.randrange(10, len(good) - 1)]                           # truncated
    if kind == 1:
        b = bytearray(good)
        for _ in range(8):
            b[rng.randrange(len(b))] = rng.randrange(256)                        # bytes flipped
        return bytes(b)
    if kind == 2:
        drop = rng.choice([b"Call-ID", b"CSeq", b"Via", b"From"])
        return b"\r\n".join(ln for ln in good.split(b"\r\n") if not ln.startswith(drop))
    if kind == 3:
        return good.replace(b"Max-Forwards: 70\r\n", b"".join(b"X-H%d: v\r\n" % i for i in range(300)))
    if kind == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1400)))   # binary junk
    if kind == 5:
        return good.replace(b"Content-Length: ", b"Content-Length: 9")           # longer than the body
    if kind == 6:
        return good.replace(b"CSeq: 1 INVITE", b"CSeq: abc INVITE")
    if kind == 7:
        return good.replace(b"INVITE sip:", b"INVITE  sip:", 1)
    if kind == 8:
        return good.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
    if kind == 9:
        return good.replace(b"m=audio", b"m=audio-ish nonsense")
    if kind == 10:
        return good.replace(b"Max-Forwards: 70", b"Max-Forwards: -1")
    if kind == 11:
        return b"\r\n\r\n" if rng.random() < 0.5 else b""
    if kind == 12:
        return b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKnone\r\nCall-ID: x\r\n\r\n"
    return b"X" * 60000                                                          # a huge datagram


def options(port: int, local: tuple[str, int], call_id: str) -> bytes:
    return (f"OPTIONS sip:bot@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bKo{uuid.uuid4().hex[:10]};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:bot@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


def in_dialog(method: str, resp: Response, local: tuple[str, int], port: int, seq: int,
              via: str | None = None) -> bytes:
    """ACK/BYE from the answer's own fields (works for the torture set's INVITEs too)."""
    h = resp.headers
    contact = h.get("Contact")
    uri = parse_name_addr(contact).uri if contact and resp.status < 300 else f"sip:bot@127.0.0.1:{port}"
    via = via or f"SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bKd{uuid.uuid4().hex[:10]};rport"
    return (f"{method} {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {h.get('From')}\r\n"
            f"To: {h.get('To')}\r\nCall-ID: {h.get('Call-ID')}\r\nCSeq: {seq} {method}\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


class Flood(asyncio.DatagramProtocol):
    def __init__(self, args, rng: random.Random):
        self.args = args
        self.rng = rng
        self.transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("127.0.0.1", 0)
        self.kind: dict[str, str] = {}            # Call-ID -> case kind
        self.finals: Counter[str] = Counter()     # "kind:status"
        self.acked: set[tuple[str, int]] = set()
        self.byes: list[asyncio.TimerHandle] = []
        self.received = 0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.local = transport.get_extra_info("sockname")[:2]
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)

    def send(self, data: bytes) -> None:
        self.transport.sendto(data, ("127.0.0.1", self.args.port))

    def datagram_received(self, data: bytes, addr) -> None:
        self.received += 1
        try:
            msg = parse_message(data)
        except SipParseError:
            return
        if not isinstance(msg, Response) or msg.status < 200:
            return
        try:
            seq, method = msg.cseq
        except ValueError:
            return
        if method != "INVITE":
            return
        cid = msg.call_id
        if (cid, msg.status) not in self.acked:        # count each answer once, ACK every copy
            self.acked.add((cid, msg.status))
            self.finals[f"{self.kind.get(cid, 'torture')}:{msg.status}"] += 1
        vias = msg.headers.get_all("Via")
        if msg.status >= 300:
            self.send(in_dialog("ACK", msg, self.local, self.args.port, seq, via=vias[0] if vias else None))
            return
        self.send(in_dialog("ACK", msg, self.local, self.args.port, seq))
        delay = self.args.hold if self.kind.get(cid) == "held" else 0.0
        bye = in_dialog("BYE", msg, self.local, self.args.port, seq + 1)
        if (cid, "bye") in self.acked:
            return
        self.acked.add((cid, "bye"))
        self.byes.append(asyncio.get_running_loop().call_later(delay, self.send, bye))


class Probe(asyncio.DatagramProtocol):
    def __init__(self):
        self.sent: dict[str, float] = {}
        self.latency: dict[str, float] = {}
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            msg = parse_message(data)
        except SipParseError:
            return
        if isinstance(msg, Response) and msg.status >= 200 and msg.call_id in self.sent \
                and msg.call_id not in self.latency:
            self.latency[msg.call_id] = time.monotonic() - self.sent[msg.call_id]


async def main(args) -> dict:
    rng = random.Random(args.seed)
    loop = asyncio.get_running_loop()
    torture = sorted(Path(args.torture).glob("*.dat")) if args.torture else []
    torture_data = [p.read_bytes() for p in torture]
    ft, flood = await loop.create_datagram_endpoint(lambda: Flood(args, rng), local_addr=("127.0.0.1", 0))
    pt, probe = await loop.create_datagram_endpoint(Probe, local_addr=("127.0.0.1", 0))
    plocal = pt.get_extra_info("sockname")[:2]
    kinds: Counter[str] = Counter()
    datagrams = 0
    start = loop.time()
    total = int(args.rate * args.seconds)
    next_probe = start
    for i in range(total):
        due = start + i / args.rate
        while next_probe <= due:
            await asyncio.sleep(max(0.0, next_probe - loop.time()))
            cid = f"probe{uuid.uuid4().hex[:12]}"
            probe.sent[cid] = time.monotonic()
            pt.sendto(options(args.port, plocal, cid), ("127.0.0.1", args.port))
            next_probe += args.probe_every
        await asyncio.sleep(max(0.0, due - loop.time()))
        r = rng.random()
        if r < 0.55:
            if torture_data and rng.random() < 0.5:
                flood.send(torture_data[i % len(torture_data)])
                kinds["torture"] += 1
            else:
                flood.send(malformed(rng, args.port, flood.local))
                kinds["malformed"] += 1
            datagrams += 1
            continue
        cid = f"v{uuid.uuid4().hex[:12]}@flood"
        data = invite(args.port, flood.local, cid, f"z9hG4bKv{uuid.uuid4().hex[:10]}", rng.randrange(5))
        flood.send(data)
        datagrams += 1
        if r < 0.85:
            flood.kind[cid] = "cancelled"
            flood.send(cancel(data))
            datagrams += 1
        else:
            flood.kind[cid] = "held"
        kinds[flood.kind[cid]] += 1
    elapsed = loop.time() - start
    await asyncio.sleep(args.hold + 1.5)          # held calls hang up; the last answers come in
    for h in flood.byes:
        h.cancel()
    ft.close()
    pt.close()
    lat = sorted(probe.latency.values())
    return {"cases": total, "datagrams": datagrams, "seconds": round(elapsed, 2),
            "rate": round(total / elapsed, 1), "kinds": dict(kinds), "finals": dict(flood.finals),
            "received": flood.received, "probes": len(probe.sent), "probes_answered": len(lat),
            "probe_latency_ms": [round(x * 1000, 2) for x in lat],
            "probe_p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000, 2) if lat else None,
            "probe_max_ms": round(lat[-1] * 1000, 2) if lat else None}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--probe-every", type=float, default=0.5)
    ap.add_argument("--hold", type=float, default=2.0)
    ap.add_argument("--torture", default="")
    ap.add_argument("--seed", type=int, default=4475)
    print(json.dumps(asyncio.run(main(ap.parse_args()))))
