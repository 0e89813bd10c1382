"""sip.call + bot/transports/sip.py: a call hands what the caller sends straight to its sink (no queue
of its own), and the SIP transport's sink is the engine's InboundMailbox, with its one drop rule."""
import asyncio

import numpy as np

from bot.audio.frame import AudioFrame
from bot.engine.port import Dtmf, Hangup
from bot.transports.sip import SipTransport
from sip import AudioChunk, CallHangup, DtmfDigit, SipCall
from sip.media import FRAME


class Owner:
    def __init__(self):
        self.hung_up = []

    def hangup(self, call):
        self.hung_up.append(call.call_id)

    def transfer(self, call, target):
        pass


def new_call(owner=None):
    return SipCall(owner or Owner(), "cid-1", "sip:alice@x", "sip:bot@y", ("127.0.0.1", 5060), (None, 20000),
                   inbound=True)


def pcm(i=0):
    return np.full(FRAME, i, np.int16)


async def test_items_reach_the_sink_in_order_as_they_arrive():
    call, got = new_call(), []
    call.set_sink(got.append)
    call.deliver_audio(pcm(1))
    call.deliver_dtmf(DtmfDigit("5", 100))
    call.deliver_audio(pcm(2))
    call.mark_ended("remote_bye")
    assert [type(x) for x in got] == [AudioChunk, DtmfDigit, AudioChunk, CallHangup]
    assert got[0].timestamp == 0 and got[2].timestamp == FRAME / 8000  # call time, frame by frame
    assert got[3] == CallHangup("remote_bye")
    call.mark_ended("local")  # ended once
    assert len(got) == 4


async def test_no_bound_of_its_own():
    call, got = new_call(), []
    call.set_sink(got.append)
    for i in range(1000):
        call.deliver_audio(pcm(i))
    assert len(got) == 1000 and call.unheard_frames == 0


async def test_before_a_sink_audio_is_unheard_dtmf_held_and_the_hangup_kept():
    call, got = new_call(), []
    call.deliver_audio(pcm())
    call.deliver_dtmf(DtmfDigit("1", 100))
    call.deliver_audio(pcm())
    call.deliver_dtmf(DtmfDigit("#", 100))
    call.mark_ended("remote_bye")
    call.set_sink(got.append)
    assert got == [DtmfDigit("1", 100), DtmfDigit("#", 100), CallHangup("remote_bye")]
    assert call.unheard_frames == 2


async def test_the_sip_transport_puts_straight_into_its_mailbox():
    owner = Owner()
    call = new_call(owner)
    t = SipTransport(call)
    assert not [x for x in asyncio.all_tasks() if x is not asyncio.current_task()]  # no forwarding task
    cap = t.inbox.capacity
    call.deliver_dtmf(DtmfDigit("7", 120))
    for i in range(cap + 50):  # the engine is stalled: the mailbox drops the oldest audio, never the DTMF
        call.deliver_audio(pcm(i % 100))
    call.mark_ended("remote_bye")
    assert t.inbox.stats.dropped_audio == 51  # the DTMF holds one of the places
    items = [await t.receive() for _ in range(cap + 1)]
    assert items[0] == Dtmf("7", 120)
    assert all(isinstance(x, AudioFrame) and x.sample_rate == 8000 for x in items[1:-1])
    assert items[-1] == Hangup("remote") and await t.receive() == Hangup("remote")
    await t.close("done")
    assert owner.hung_up == ["cid-1"]
