"""RTP sockets and the one 20 ms media clock that drives every call's `RtpSession`.

Each tick the clock drains every call's RTP/RTCP sockets into its session, hands the caller's
audio and DTMF to the `SipCall`, pulls 20 ms of bot audio from it and sends that. A call whose
media stopped arriving (`RtpSession.timed_out`) is handed to the owner's `on_rtp_timeout`."""
from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter, deque
from typing import Callable, Mapping

import numpy as np

from .call import SipCall
from .media import FRAME
from .pacer import Pacer

log = logging.getLogger("sip")
_SILENCE = np.zeros(FRAME, np.int16)


class RtpPair:
    """One call's RTP and RTCP sockets (RTP even, RTCP + 1). They are not registered with the event
    loop: the media clock drains them once per 20 ms tick, which saves a loop callback per packet
    (the jitter buffer is there to absorb that much delay anyway). RTCP goes out from its own port."""

    MAX_PER_TICK = 64      # a flood beyond this stays in the kernel (and is dropped there)

    def __init__(self, rtp: socket.socket, rtcp: socket.socket) -> None:
        self.rtp = rtp
        self.rtcp = rtcp

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        sock = self.rtcp if len(data) > 1 and 192 <= data[1] <= 223 else self.rtp
        sock.sendto(data, addr)

    def drain(self, receive: Callable[[bytes, tuple[str, int]], None]) -> int:
        n = 0
        for sock in (self.rtp, self.rtcp):
            while n < self.MAX_PER_TICK:
                try:
                    data, addr = sock.recvfrom(4096)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:        # ICMP errors surface here on Linux; nothing to read
                    break
                receive(data, addr[:2])
                n += 1
        return n

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


class RtpPorts:
    """Hands out RTP/RTCP socket pairs from a port range, round robin."""

    def __init__(self, bind: str, ports: tuple[int, int]) -> None:
        self.bind = bind
        self.ports = ports
        self._next = ports[0]

    def open(self) -> tuple[RtpPair, int]:
        """An even RTP port and its RTCP twin (port + 1), both bound and non-blocking, or OSError."""
        lo, hi = self.ports
        for _ in range(200):
            port = self._next
            self._next = lo if self._next + 2 >= hi else self._next + 2
            socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
            try:
                socks[0].bind((self.bind, port))
                socks[1].bind((self.bind, port + 1))
            except OSError:
                for x in socks:
                    x.close()
                continue
            for x in socks:
                x.setblocking(False)
            return RtpPair(socks[0], socks[1]), port
        raise OSError("no free RTP port")


class MediaClock:
    """Ticks every live call once per `tick`, on the shared pacer (`sip.pacer.Pacer`) and its one
    lateness rule. A tick at most `MAX_LATE` (100 ms) late still runs: the ticks a short stall held
    back run back to back, one per loop turn, and the peer's jitter buffer absorbs them. Past it the
    clock resynchronises instead of bursting: the missed ticks are skipped (counted in
    `stats["media_clock_skips"]`, the events, and `stats["media_clock_skipped_ticks"]`), each call's
    RTP timestamps jump by them (`RtpSession.skip_output`: the peer hears one gap rather than us
    running late from then on), and the caller's audio that piled up meanwhile is delivered a little
    faster than real time (`RtpSession.pull_frames`)."""

    def __init__(self, tick: float, calls: Mapping[str, SipCall], stats: Counter[str],
                 on_rtp_timeout: Callable[[SipCall, float], None]) -> None:
        """`calls` is the owner's live calls (read each tick); `stats` its counters; `tick` 0: no clock."""
        self.tick = tick
        self.calls = calls
        self.stats = stats
        self.on_rtp_timeout = on_rtp_timeout
        self.pacer = Pacer(tick) if tick > 0 else None
        self.tick_lateness: deque[float] = deque(maxlen=3000)   # media clock health (bench, metrics)
        self.tick_work: deque[float] = deque(maxlen=3000)

    async def run(self) -> None:
        pacer = self.pacer
        if pacer is None:
            raise RuntimeError("the media clock is disabled (tick = 0)")
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(pacer.wait(loop.time()))
            now = loop.time()
            resyncs, skipped = pacer.resyncs, pacer.skipped
            if not pacer.due(now):
                continue
            if pacer.resyncs != resyncs:
                self._skip(pacer.skipped - skipped)
            self.tick_lateness.append(now - pacer.playout())
            for call in list(self.calls.values()):
                try:
                    self.tick_call(call, now)
                except Exception:
                    self.stats["internal_error"] += 1
                    log.exception("media tick failed for %s", call.call_id)
            pacer.advance()
            self.tick_work.append(loop.time() - now)

    def _skip(self, missed: int) -> None:
        """The loop stalled past the pacer's lateness rule: `missed` ticks are not run."""
        self.stats["media_clock_skips"] += 1
        self.stats["media_clock_skipped_ticks"] += missed
        for call in list(self.calls.values()):
            if call.session is not None:
                call.session.skip_output(missed)

    def tick_call(self, call: SipCall, now: float) -> None:
        s = call.session
        if s is None or call.ended.is_set():
            return
        call.rtp.drain(lambda data, addr: s.receive(data, addr, now))
        for frame in s.pull_frames():
            call.deliver_audio(frame)
        for d in s.events():
            call.deliver_dtmf(d)
        pcm = call.next_output()
        for data, addr in s.send_audio(pcm if pcm is not None else _SILENCE, now):
            try:
                call.rtp.sendto(data, addr)
            except (OSError, ValueError):
                self.stats["rtp_send_error"] += 1
        if s.timed_out(now):
            self.stats["rtp_timeout"] += 1
            self.on_rtp_timeout(call, now)

    def summary(self) -> dict[str, float]:
        """Media clock health and stream counters over the live calls (for benches and metrics)."""
        late = sorted(self.tick_lateness)
        work = sorted(self.tick_work)

        def pct(xs: list[float], q: float) -> float:
            return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 2) if xs else 0.0
        agg: Counter[str] = Counter()
        for c in self.calls.values():
            if c.session is not None:
                agg.update(c.session.stats)
                agg.update({f"jitter_{k}": v for k, v in c.session.jitter.stats.items()})
                agg["sent"] += c.session.sent_packets
        return {"calls": len(self.calls), "tick_late_p50_ms": pct(late, 0.5), "tick_late_p99_ms": pct(late, 0.99),
                "tick_work_p50_ms": pct(work, 0.5), "tick_work_p99_ms": pct(work, 0.99),
                "clock_skips": self.stats["media_clock_skips"], **dict(agg)}
