"""One call's RTP audio stream, sans-IO: symmetric RTP with guarded source learning, RFC 3550
sequence checks, jitter buffer + PLC, G.711, RFC 4733 DTMF both ways, RTCP and the no-RTP timeout.

The owner (an asyncio edge) calls, once per 20 ms tick:
    frame = session.pull_frame()            # caller audio, PCM16 8 kHz, 160 samples
    out = session.send_audio(pcm160, now)   # [(bytes, addr)] for the bot's audio
and feeds every datagram to `receive(data, addr, now)`. `events()` drains DTMF digits.

Source learning: packets are accepted from the address in the peer's SDP. If the peer is behind a
NAT, the first source seen *after signalling opened learning* (`open_learning()`, called on ACK) is
locked in; after that, packets from any other address are dropped and counted, so a stranger can
never take over the stream. A re-INVITE (`update()`) with a new address re-opens learning.
"""
from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from . import g711
from .dtmf import DtmfReceiver, event_packets
from .jitter import JitterBuffer, JitterSettings, SequenceTracker
from .rtp import RTP_HEADER, ReportBlock, RtcpPacket, RtpPacket, is_rtcp, receiver_report, sender_report
from .sdp import Negotiated

FRAME = 160


@dataclass(frozen=True)
class MediaSettings:
    rtp_timeout: float = 30.0            # hang up after this long without RTP (0: never)
    jitter: JitterSettings = JitterSettings(drop_when_deep=False)   # pull_frames drains the excess
    max_extra_frames: int = 2            # catch-up: extra frames handed over per tick when too deep
    rtcp_interval: float = 5.0
    learn_source: bool = True            # NAT: accept the first post-signalling source


class Codec(Protocol):
    """An RTP audio codec: PCM16 at 8 kHz in and out, `clock` Hz RTP timestamps on the wire."""
    name: str
    clock: int

    def decode(self, payload: bytes, /) -> np.ndarray: ...

    def encode(self, pcm: np.ndarray, /) -> bytes | None:
        """One packet's payload, or None while the codec is still filling up."""
        ...


class _G711:
    clock = 8000

    def __init__(self, name: str):
        self.name = name

    def decode(self, payload: bytes) -> np.ndarray:
        return g711.decode(payload, self.name)

    def encode(self, pcm: np.ndarray) -> bytes:
        return g711.encode(pcm, self.name)


def make_codec(name: str) -> Codec:
    if name == "OPUS":
        from .opus import OpusCodec
        return OpusCodec()
    return _G711(name)


@dataclass(frozen=True)
class DtmfDigit:
    digit: str
    duration_ms: int


class RtpSession:
    def __init__(self, media: Negotiated, now: float, settings: MediaSettings = MediaSettings(),
                 ssrc: int | None = None):
        self.settings = settings
        self.media = media
        self.ssrc = ssrc if ssrc is not None else random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._ts = random.getrandbits(32)
        self.remote: tuple[str, int] | None = media.remote_addr
        self.locked: tuple[str, int] | None = None
        self._learning = False
        self._learn_ips: frozenset[str] = frozenset()
        self._previous: tuple[str, int] | None = None
        self.remote_ssrc: int | None = None
        self.seq = SequenceTracker()
        self.jitter = JitterBuffer(settings.jitter)
        self.codec = make_codec(media.codec)
        self._ratio = self.codec.clock // 8000     # RTP clock units per 8 kHz sample
        self._rx_ts: int | None = None             # unwrapped receive timestamp (codec clock)
        self.dtmf = DtmfReceiver(self.codec.clock)
        self._events: deque[DtmfDigit] = deque()
        self._dtmf_out: deque[tuple[bytes, bool]] = deque()
        self._dtmf_ts: int | None = None
        self.last_rtp = now
        self._next_rtcp = now + settings.rtcp_interval
        self.sent_packets = 0
        self.sent_octets = 0
        self.stats: Counter[str] = Counter()

    # -- signalling hooks ------------------------------------------------------------------------
    def open_learning(self, ips: frozenset[str] = frozenset()) -> None:
        """Signalling is done: accept the first source from one of `ips` (the SDP and signalling
        addresses; empty: any) in place of the SDP address."""
        if ips:
            self._learn_ips = ips
        if self.settings.learn_source and self.locked is None:
            self._learning = True

    def update(self, media: Negotiated, now: float) -> None:
        """A re-INVITE changed the stream: new address/codec/direction."""
        if media.remote_addr != self.media.remote_addr:
            self.remote = media.remote_addr
            self._previous = self.locked      # late packets from the old path must not win the re-learning
            self.locked = None
            self.open_learning(self._learn_ips | ({media.remote_addr[0]} if media.remote_addr else set()))
        if media.codec != self.media.codec:
            self.codec = make_codec(media.codec)
            self._ratio = self.codec.clock // 8000
            self._rx_ts = None
            self.dtmf = DtmfReceiver(self.codec.clock)
            self.jitter.reset()
        self.media = media
        self.last_rtp = now

    # -- receive -----------------------------------------------------------------------------------
    def receive(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        if is_rtcp(data):
            self._receive_rtcp(data, addr)
            return
        try:
            pkt = RtpPacket.parse(data)
        except ValueError:
            self.stats["malformed"] += 1
            return
        if not self._source_ok(addr):
            self.stats["foreign_source"] += 1
            return
        if pkt.payload_type not in (self.media.payload_type, self.media.dtmf_payload_type, 13):
            self.stats["unknown_payload_type"] += 1
            return
        if self.remote_ssrc is not None and pkt.ssrc != self.remote_ssrc:
            # a new SSRC from the locked source (re-INVITE, PBX re-anchoring): start the stream over
            self.stats["ssrc_change"] += 1
            self.seq = SequenceTracker()
            self.jitter.reset()
        self.remote_ssrc = pkt.ssrc
        if not self.seq.update(pkt.sequence) and (self.seq.probation == 0 or self.seq.received > 0):
            self.stats["bad_sequence"] += 1
            return
        self.last_rtp = now
        self.stats["received"] += 1
        if pkt.payload_type == self.media.dtmf_payload_type:
            try:
                got = self.dtmf.feed(pkt.timestamp, pkt.payload)
            except ValueError:
                self.stats["malformed_dtmf"] += 1
                return
            if got:
                self._events.append(DtmfDigit(*got))
            return
        if pkt.payload_type == 13:   # comfort noise: silence
            return
        try:
            pcm = self.codec.decode(pkt.payload)
        except ValueError:
            self.stats["malformed_audio"] += 1
            return
        if not self.jitter.put(self._jitter_ts(pkt.timestamp), pcm, now):
            self.stats["late"] += 1

    def _jitter_ts(self, ts: int) -> int:
        """The packet's timestamp in 8 kHz samples (the jitter buffer's clock), wrapping at 2^32."""
        if self._ratio == 1:
            return ts
        if self._rx_ts is None:
            self._rx_ts = ts
        else:
            d = (ts - self._rx_ts) % 2**32
            self._rx_ts += d - 2**32 if d >= 2**31 else d
        return (self._rx_ts // self._ratio) & 0xFFFFFFFF

    def _source_ok(self, addr: tuple[str, int]) -> bool:
        if self.locked is not None:
            return addr == self.locked
        if self.remote is not None and addr == self.remote:
            self.locked = addr
            return True
        if self._learning and addr != self._previous and (not self._learn_ips or addr[0] in self._learn_ips):
            self.locked = addr
            self.remote = addr     # symmetric RTP: answer where the peer really sends from
            self._learning = False
            self.stats["source_learned"] += 1
            return True
        return False

    def _receive_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packets = RtcpPacket.parse_compound(data)
        except ValueError:
            self.stats["malformed_rtcp"] += 1
            return
        if self.locked is not None and addr[0] != self.locked[0]:
            self.stats["foreign_rtcp"] += 1
            return
        self.stats["rtcp"] += len(packets)

    def pull_frame(self) -> np.ndarray:
        """20 ms of caller audio (silence before the stream starts or while the peer holds)."""
        frame = self.jitter.pop()
        return frame if frame is not None else np.zeros(FRAME, np.int16)

    def pull_frames(self) -> list[np.ndarray]:
        """This tick's frame, plus up to `max_extra_frames` more while the buffer is deeper than its
        target: after a stall the caller's audio reaches the application a little faster than real
        time instead of being dropped."""
        frames = [self.pull_frame()]
        while len(frames) <= self.settings.max_extra_frames and self.jitter.excess():
            frames.append(self.pull_frame())
            self.stats["caught_up"] += 1
        return frames

    def events(self) -> list[DtmfDigit]:
        out = list(self._events)
        self._events.clear()
        return out

    def timed_out(self, now: float) -> bool:
        if not self.media.they_send:
            self.last_rtp = now     # the peer holds: no RTP is expected
            return False
        if not self.settings.rtp_timeout:
            return False
        return now - self.last_rtp > self.settings.rtp_timeout

    # -- send --------------------------------------------------------------------------------------
    def send_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        if self.media.dtmf_payload_type is None:
            raise ValueError("the peer did not negotiate telephone-event")
        self._dtmf_out.extend(event_packets(digit, duration_ms, clock=self.codec.clock))

    def skip_output(self, frames: int) -> None:
        """The owner's clock skipped `frames` ticks: move our RTP timestamp on (a gap, not a delay)."""
        self._ts = (self._ts + frames * FRAME * self._ratio) & 0xFFFFFFFF

    def send_audio(self, pcm: np.ndarray, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        """Packetize one 20 ms frame of bot audio (or the next DTMF packet instead of it)."""
        out: list[tuple[bytes, tuple[str, int]]] = []
        dest = self.locked or self.remote
        if dest is None or not self.media.we_send:
            self._ts = (self._ts + FRAME * self._ratio) & 0xFFFFFFFF
            return out
        if self._dtmf_out:
            payload, marker = self._dtmf_out.popleft()
            if marker or self._dtmf_ts is None:
                self._dtmf_ts = self._ts
            pkt = RtpPacket(self.media.dtmf_payload_type or 101, self._seq, self._dtmf_ts, self.ssrc, payload, marker)
            if not self._dtmf_out or self._dtmf_out[0][1]:
                self._dtmf_ts = None
            data = bytes(pkt)
            size = len(payload)
        else:
            # the hot path: no packet object, one struct.pack (marker on the stream's first packet)
            encoded = self.codec.encode(pcm)
            if encoded is None:          # the codec is still filling up (Opus resampler): nothing yet
                self._ts = (self._ts + FRAME * self._ratio) & 0xFFFFFFFF
                return out
            first = 0x80 if self.sent_packets == 0 else 0
            data = RTP_HEADER.pack(0x80, first | self.media.payload_type, self._seq, self._ts, self.ssrc) + encoded
            size = len(encoded)
        out.append((data, dest))
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + FRAME * self._ratio) & 0xFFFFFFFF
        self.sent_packets += 1
        self.sent_octets += size
        if now >= self._next_rtcp:
            self._next_rtcp = now + self.settings.rtcp_interval
            out.append((self.rtcp_report(now), (dest[0], dest[1] + 1)))
        return out

    def rtcp_report(self, now: float) -> bytes:
        block = None
        if self.remote_ssrc is not None:
            lost = self.seq.lost
            block = ReportBlock(self.remote_ssrc, 0, lost, self.seq.extended_max & 0xFFFFFFFF,
                                int(self.jitter.jitter * self.codec.clock))
        if self.sent_packets:
            ntp = int((now + 2208988800) * 2**32) & 0xFFFFFFFFFFFFFFFF
            return sender_report(self.ssrc, ntp, self._ts, self.sent_packets, self.sent_octets, block)
        return receiver_report(self.ssrc, block)
