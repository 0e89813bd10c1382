"""bot.engine.mailbox: the one inbound mailbox of every transport (pure, no sockets)."""
import asyncio

import numpy as np
import pytest

from bot.audio.frame import AudioFrame
from bot.engine.mailbox import InboundMailbox
from bot.engine.port import Dtmf, Hangup


def frame(i: int) -> AudioFrame:
    return AudioFrame(np.full(160, i, np.int16), 8000, i * 0.02)


def drain(box: InboundMailbox) -> list:
    async def go():
        return [await box.get() for _ in range(len(box))]
    return asyncio.run(go())


def test_full_mailbox_drops_the_oldest_audio_and_counts_it():
    box = InboundMailbox(capacity=4)
    dropped = [box.put(frame(i)) for i in range(10)]
    assert dropped == [False] * 4 + [True] * 6
    assert [f.timestamp for f in drain(box)] == pytest.approx([0.12, 0.14, 0.16, 0.18])  # the newest kept
    assert box.stats.audio_in == 10 and box.stats.dropped_audio == 6


def test_dtmf_and_hangup_are_never_dropped_and_keep_their_place():
    box = InboundMailbox(capacity=3)
    box.put(frame(0))
    box.put(Dtmf("5"))
    for i in range(1, 6):
        box.put(frame(i))
    box.put(Dtmf("#"))
    box.put(Hangup("remote"))
    items = drain(box)
    # the DTMF pressed before the newest audio still comes first; only audio went
    assert items[0] == Dtmf("5")
    assert [x.timestamp for x in items if isinstance(x, AudioFrame)] == pytest.approx([0.08, 0.1])
    assert items[-2:] == [Dtmf("#"), Hangup("remote")]
    assert box.stats.dropped_audio == 4 and box.stats.control_in == 3


def test_control_may_pass_the_capacity_and_then_the_arriving_audio_goes():
    box = InboundMailbox(capacity=2)
    for d in "123":
        assert not box.put(Dtmf(d))
    assert len(box) == 3
    assert box.put(frame(0))  # nothing held is audio: the arriving frame is the oldest, dropped
    assert [x.digit for x in drain(box)] == ["1", "2", "3"]
    assert box.stats.dropped_audio == 1


def test_the_first_hangup_is_final_and_repeats():
    async def go():
        box = InboundMailbox()
        box.put(frame(0))
        box.put(Hangup("caller"))
        box.put(frame(1))
        box.put(Hangup("other"))
        assert box.ended and box.stats.ignored == 2
        assert isinstance(await box.get(), AudioFrame)
        assert [await box.get() for _ in range(3)] == [Hangup("caller")] * 3
    asyncio.run(go())


def test_get_waits_for_an_item_and_wait_idle_says_when_the_reader_waits():
    async def go():
        box = InboundMailbox()
        reader = asyncio.ensure_future(box.get())
        await box.wait_idle()  # the reader is waiting on an empty mailbox
        assert not reader.done()
        box.put(Dtmf("7"))
        assert await asyncio.wait_for(reader, 1) == Dtmf("7")
    asyncio.run(go())


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        InboundMailbox(0)
