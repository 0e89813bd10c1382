"""RTP and RTCP packets (RFC 3550): parse with ValueError on bad input, write with `bytes()`."""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_HEADER = struct.Struct("!BBHII")
RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE, RTCP_APP = 200, 201, 202, 203, 204


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None   # (profile, data)

    @classmethod
    def parse(cls, data: bytes) -> "RtpPacket":
        if len(data) < 12:
            raise ValueError(f"RTP packet of {len(data)} bytes is shorter than its 12-byte header")
        b0, b1, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
        if b0 >> 6 != 2:
            raise ValueError(f"RTP version {b0 >> 6} is not 2")
        if 72 <= (b1 & 0x7F) <= 76:
            raise ValueError("an RTCP packet on the RTP port")
        pos = 12
        cc = b0 & 0x0F
        if len(data) < pos + 4 * cc:
            raise ValueError("RTP packet truncated in its CSRC list")
        csrc = struct.unpack_from(f"!{cc}I", data, pos) if cc else ()
        pos += 4 * cc
        ext = None
        if b0 & 0x10:
            if len(data) < pos + 4:
                raise ValueError("RTP packet truncated in its header extension")
            profile, length = struct.unpack_from("!HH", data, pos)
            pos += 4
            if len(data) < pos + 4 * length:
                raise ValueError("RTP header extension longer than the packet")
            ext = (profile, data[pos:pos + 4 * length])
            pos += 4 * length
        end = len(data)
        if b0 & 0x20:
            pad = data[-1]
            if pad == 0 or pos + pad > len(data):
                raise ValueError(f"bad RTP padding length {pad}")
            end -= pad
        return cls(b1 & 0x7F, seq, ts, ssrc, bytes(data[pos:end]), bool(b1 & 0x80), tuple(csrc), ext)

    def __bytes__(self) -> bytes:
        b0 = 0x80 | len(self.csrc) | (0x10 if self.extension else 0)
        out = RTP_HEADER.pack(b0, (0x80 if self.marker else 0) | self.payload_type, self.sequence & 0xFFFF,
                              self.timestamp & 0xFFFFFFFF, self.ssrc)
        if self.csrc:
            out += struct.pack(f"!{len(self.csrc)}I", *self.csrc)
        if self.extension:
            profile, data = self.extension
            out += struct.pack("!HH", profile, len(data) // 4) + data
        return out + self.payload


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 demultiplexing: RTCP packet types 200-204 sit where RTP has PT 72-76 with marker."""
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass(frozen=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_seq: int
    jitter: int
    lsr: int = 0
    dlsr: int = 0


@dataclass(frozen=True)
class RtcpPacket:
    """One packet of a compound RTCP datagram. `sender` is set for SR: (ntp, rtp_ts, packets, octets)."""
    packet_type: int
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    sender: tuple[int, int, int, int] | None = None
    sources: tuple[int, ...] = field(default=())   # BYE
    raw: bytes = b""

    @classmethod
    def parse_compound(cls, data: bytes) -> list["RtcpPacket"]:
        out = []
        pos = 0
        while pos < len(data):
            if len(data) - pos < 4:
                raise ValueError("truncated RTCP header")
            b0, pt, length = struct.unpack_from("!BBH", data, pos)
            if b0 >> 6 != 2:
                raise ValueError(f"RTCP version {b0 >> 6} is not 2")
            end = pos + 4 * (length + 1)
            if end > len(data):
                raise ValueError("RTCP length runs past the datagram")
            body = data[pos + 4:end]
            count = b0 & 0x1F
            if pt in (RTCP_SR, RTCP_RR):
                if len(body) < 4:
                    raise ValueError("RTCP report without SSRC")
                ssrc = struct.unpack_from("!I", body)[0]
                p = 4
                sender = None
                if pt == RTCP_SR:
                    if len(body) < 24:
                        raise ValueError("truncated sender report")
                    hi, lo, rts, pc, oc = struct.unpack_from("!IIIII", body, 4)
                    sender = ((hi << 32) | lo, rts, pc, oc)
                    p = 24
                if len(body) < p + 24 * count:
                    raise ValueError("truncated RTCP report blocks")
                blocks = []
                for i in range(count):
                    s, lost, hs, jit, lsr, dlsr = struct.unpack_from("!IIIIII", body, p + 24 * i)
                    cum = lost & 0xFFFFFF
                    if cum & 0x800000:
                        cum -= 1 << 24
                    blocks.append(ReportBlock(s, lost >> 24, cum, hs, jit, lsr, dlsr))
                out.append(cls(pt, ssrc, tuple(blocks), sender))
            elif pt == RTCP_BYE:
                if len(body) < 4 * count:
                    raise ValueError("truncated RTCP BYE")
                srcs = struct.unpack_from(f"!{count}I", body) if count else ()
                out.append(cls(pt, srcs[0] if srcs else 0, sources=tuple(srcs)))
            else:
                ssrc = struct.unpack_from("!I", body)[0] if len(body) >= 4 else 0
                out.append(cls(pt, ssrc, raw=bytes(body)))
            pos = end
        return out


def receiver_report(ssrc: int, block: ReportBlock | None, cname: str = "duplexbot") -> bytes:
    """A compound RR + SDES(CNAME)."""
    blocks = [block] if block else []
    body = struct.pack("!I", ssrc) + b"".join(
        struct.pack("!IIIIII", b.ssrc, (b.fraction_lost << 24) | (b.cumulative_lost & 0xFFFFFF), b.highest_seq,
                    b.jitter, b.lsr, b.dlsr) for b in blocks)
    rr = struct.pack("!BBH", 0x80 | len(blocks), RTCP_RR, len(body) // 4) + body
    return rr + _sdes(ssrc, cname)


def sender_report(ssrc: int, ntp: int, rtp_ts: int, packets: int, octets: int, block: ReportBlock | None,
                  cname: str = "duplexbot") -> bytes:
    blocks = [block] if block else []
    body = struct.pack("!IIIIII", ssrc, ntp >> 32, ntp & 0xFFFFFFFF, rtp_ts & 0xFFFFFFFF, packets, octets)
    body += b"".join(struct.pack("!IIIIII", b.ssrc, (b.fraction_lost << 24) | (b.cumulative_lost & 0xFFFFFF),
                                 b.highest_seq, b.jitter, b.lsr, b.dlsr) for b in blocks)
    sr = struct.pack("!BBH", 0x80 | len(blocks), RTCP_SR, len(body) // 4) + body
    return sr + _sdes(ssrc, cname)


def bye(ssrc: int) -> bytes:
    return struct.pack("!BBHI", 0x81, RTCP_BYE, 1, ssrc)


def _sdes(ssrc: int, cname: str) -> bytes:
    item = bytes([1, len(cname)]) + cname.encode()
    chunk = struct.pack("!I", ssrc) + item + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    return struct.pack("!BBH", 0x81, RTCP_SDES, len(chunk) // 4) + chunk
