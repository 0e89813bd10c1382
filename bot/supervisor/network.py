"""Network quality of one call, by transport: jitter, loss and round trip where the transport
measures them.

- WebRTC: aiortc's `RTCPeerConnection.getStats()` (`WebRTCTransport.network_stats`): the caller's
  audio as we receive it, ours as the browser's RTCP receiver reports describe it, and the round
  trip aiortc derives from those reports.
- SIP: the RTP session's sequence tracker (packets expected, received, lost; RFC 3550 A.3) and
  jitter buffer (interarrival jitter, RFC 3550 A.8; depth, late and concealed frames). The SIP
  stack parses the peer's RTCP but keeps no round trip from it: `rtt` is None, and says so.
- Twilio Media Streams carry no RTP statistics (Twilio terminates RTP): nothing to show.
"""
from __future__ import annotations

from typing import Any, Protocol

from ..engine.port import CallInfo
from ..transports.sip import SipTransport
from ..transports.webrtc import WebRTCTransport

QualityValue = float | int | str | bool | None


class Described(Protocol):
    """Any transport: it names its kind (`info.transport`)."""
    @property
    def info(self) -> CallInfo: ...


def _loss(lost: Any, total: Any) -> float | None:
    if not isinstance(lost, int) or not isinstance(total, int) or lost + total <= 0:
        return None
    return round(max(0, lost) / (max(0, lost) + total), 4)


async def network_quality(transport: Described) -> dict[str, QualityValue]:
    """One flat dict for the pages: `jitter` and `rtt` in seconds, `loss` as a fraction (caller →
    bot), with the transport's own figures beside them; `available` False when it measures none."""
    if isinstance(transport, WebRTCTransport):
        s = await transport.network_stats()
        return {"available": True, "source": "webrtc getStats (aiortc)", "jitter": s["in_jitter"],
                "loss": _loss(s["in_lost"], s["in_packets"]), "rtt": s["rtt"],
                "packets_in": s["in_packets"], "lost_in": s["in_lost"], "jitter_out": s["out_jitter"],
                "loss_out": s["out_fraction_lost"], "lost_out": s["out_lost"], "packets_out": s["out_packets"]}
    if isinstance(transport, SipTransport):
        rtp = transport.call.session
        if rtp is None:
            return {"available": False, "source": "sip rtp", "why": "no media yet"}
        seq, jb = rtp.seq, rtp.jitter
        return {"available": True, "source": "sip rtp/jitter buffer", "jitter": round(jb.jitter, 5),
                "loss": round(seq.lost / seq.expected, 4) if seq.expected > 0 else None, "rtt": None,
                "rtt_why": "the SIP stack keeps no round trip from RTCP", "packets_in": seq.received,
                "lost_in": seq.lost, "expected_in": seq.expected, "buffer_depth": round(jb.depth, 3),
                "late": int(jb.stats.get("late", 0)), "concealed": int(jb.stats.get("concealed", 0)),
                "rtcp_in": int(rtp.stats.get("rtcp", 0)), "packets_out": rtp.sent_packets}
    kind = transport.info.transport
    why = ("Twilio Media Streams carry no RTP statistics" if kind == "twilio"
           else f"the {kind} transport measures no network figures")
    return {"available": False, "source": kind, "why": why}
