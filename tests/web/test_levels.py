"""The level meter without sockets: 100 ms windows on the caller's stream time, the bot's level
from the tap's bot frame, gaps filled
with silence, a bounded ring and bounded subscriber queues."""
from __future__ import annotations

import numpy as np

from bot.audio import AudioFrame
from bot.supervisor.levels import FLOOR, CallLevels, LevelMeter, LevelSample


def tone(n: int, amp: float) -> np.ndarray:
    return (np.sin(np.arange(n) / 3) * amp).astype(np.int16)


def test_both_levels_on_the_callers_stream_time():
    """The tap's bot frame is the bot audio that went out while the caller's chunk came in (the
    playout keeps it on the caller's clock, tests/engine/test_playout.py)."""
    out: list[LevelSample] = []
    meter = LevelMeter(out.append)
    silent = np.zeros(512, np.int16)
    for i in range(50):  # 1.6 s: the bot talks for the first 0.8 s, the caller for the last 0.8 s
        bot = tone(512, 10000) if i < 25 else silent
        meter(AudioFrame(silent if i < 25 else tone(512, 10000), 16000, 5.0 + i * 0.032), AudioFrame(bot, 16000))
    assert [round(s.t, 1) for s in out[:3]] == [5.0, 5.1, 5.2] and len(out) == 16
    assert all(s.bot > -20 and s.caller == FLOOR for s in out[1:7])
    assert all(s.caller > -20 and s.bot == FLOOR for s in out[9:15])


def test_gaps_are_filled_and_the_ring_is_bounded():
    out: list[LevelSample] = []
    meter = LevelMeter(out.append)
    loud = AudioFrame(tone(1600, 8000), 16000, 0.0)
    meter(loud, AudioFrame(np.zeros(1600, np.int16), 16000))
    meter(AudioFrame(tone(1600, 8000), 16000, 1.0), AudioFrame(np.zeros(1600, np.int16), 16000))  # secure input gap
    assert [round(s.t, 1) for s in out] == [round(0.1 * i, 1) for i in range(11)]
    assert all(s.caller == FLOOR for s in out[1:10]) and out[10].caller > -20
    levels = CallLevels("c", "acme", keep_samples=100, queue_size=4)
    q = levels.subscribe()
    for i in range(300):
        levels.add(LevelSample(i * 0.1, -30.0, -40.0))
    assert len(levels.caller) <= 110 and q.qsize() == 4 and levels.dropped == 296
    sr = levels.series()
    assert sr["t0"] == round(300 * 0.1 - len(sr["caller"]) * 0.1, 2) and sr["caller"][-1] == -30.0
