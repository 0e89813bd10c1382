"""The asyncio edge with raw sockets: no-RTP hang-up, load shedding on the wire, RTP re-anchoring."""
from dataclasses import replace

from sip.media import MediaSettings
from sip.message import Request
from sip.ua import UaSettings

from .conftest import in_thread
from .peer import Peer, in_dialog, invite, to_tag


def call_and_wait_for_bye(port: int) -> tuple[int, str | None]:
    p = Peer(port)
    try:
        data, d = invite(port, p.local)
        p.send(data)
        ok = p.final(d["call_id"])
        p.send(in_dialog("ACK", d, to_tag(ok), 1))
        bye = p.expect(lambda m: isinstance(m, Request) and m.method == "BYE", timeout=5)
        return ok.status, bye.method if bye else None
    finally:
        p.close()


async def test_hangs_up_after_rtp_timeout(sip_server):
    srv = await sip_server(media=replace(MediaSettings(), rtp_timeout=0.5))
    status, bye = await in_thread(call_and_wait_for_bye, srv.port)
    assert (status, bye) == (200, "BYE") and srv.stats["rtp_timeout"] == 1


def two_calls(port: int) -> list[int]:
    p = Peer(port)
    try:
        out = []
        for _ in range(2):
            data, d = invite(port, p.local)
            p.send(data)
            r = p.final(d["call_id"])
            out.append((r.status, r.headers.get("Retry-After")))
        return out
    finally:
        p.close()


async def test_503_retry_after_on_the_wire(sip_server):
    srv = await sip_server(ua=replace(UaSettings(), max_calls=1, retry_after=9))
    assert await in_thread(two_calls, srv.port) == [(200, None), (503, "9")]
