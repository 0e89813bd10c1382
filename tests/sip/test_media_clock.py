"""sip.media_clock: the SIP media clock runs on the shared pacer (sip.pacer) and its one lateness rule."""
import asyncio
import time
from collections import Counter

from sip.media_clock import MediaClock
from sip.pacer import MAX_LATE


class Session:
    def __init__(self):
        self.sent = 0
        self.skipped = []

    def receive(self, data, addr, now):
        pass

    def pull_frames(self):
        return []

    def events(self):
        return []

    def send_audio(self, pcm, now):
        self.sent += 1
        return []

    def timed_out(self, now):
        return False

    def skip_output(self, frames):
        self.skipped.append(frames)


class Rtp:
    def drain(self, receive):
        return 0


class Call:
    call_id = "c1"

    def __init__(self):
        self.session = Session()
        self.ended = asyncio.Event()
        self.rtp = Rtp()

    def next_output(self):
        return None


async def run_clock(stall: float):
    call = Call()
    stats: Counter[str] = Counter()
    clock = MediaClock(0.02, {"c1": call}, stats, lambda c, now: None)
    task = asyncio.create_task(clock.run())
    try:
        await asyncio.sleep(0.2)
        time.sleep(stall)  # the event loop stalls
        await asyncio.sleep(0.2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return clock, call, stats


async def test_a_stall_past_max_late_resynchronises_and_leaves_a_timestamp_gap():
    clock, call, stats = await run_clock(0.3)
    assert stats["media_clock_skips"] == clock.pacer.resyncs == len(call.session.skipped) >= 1
    assert 10 <= max(call.session.skipped) <= 16  # the stall's ~300 ms of 20 ms ticks, not sent late
    assert stats["media_clock_skipped_ticks"] == sum(call.session.skipped) == clock.pacer.skipped
    assert clock.pacer.frames == call.session.sent


async def test_a_short_stall_is_caught_up_without_a_skip():
    clock, call, stats = await run_clock(MAX_LATE * 0.5)
    assert stats["media_clock_skips"] == 0 and call.session.skipped == []
    assert call.session.sent >= 0.9 * (0.45 / 0.02)  # the held-back ticks ran, back to back


def test_no_clock_when_the_tick_is_zero():
    assert MediaClock(0, {}, Counter(), lambda c, now: None).pacer is None
